// hardkv CLI entry point: parses the subcommand, runs it, and turns errors into one-line messages
// and a non-zero exit code.
#include <cstdio>
#include <map>
#include <memory>
#include <vector>

#include "cli/command.h"
#include "core/error.h"

namespace hardkv::cli {
namespace {

struct Entry {
  std::string help;
  CommandSetup setup;
};

std::map<std::string, Entry>& registry() {
  static std::map<std::string, Entry> commands;
  return commands;
}

}  // namespace

CommandRegistrar::CommandRegistrar(const std::string& name, const std::string& help,
                                   CommandSetup setup) {
  registry()[name] = Entry{help, std::move(setup)};
}

}  // namespace hardkv::cli

int main(int argc, char** argv) {
  using namespace hardkv::cli;
  CLI::App app{"hardkv: LLM inference with head-adaptive KV compression and cascade attention"};
  app.require_subcommand(1);
  std::vector<std::pair<CLI::App*, std::function<int()>>> runners;
  for (auto& [name, entry] : registry()) {
    CLI::App* sub = app.add_subcommand(name, entry.help);
    runners.emplace_back(sub, entry.setup(sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto& [sub, run] : runners) {
      if (sub->parsed()) return run();
    }
  } catch (const hardkv::Error& e) {
    std::fprintf(stderr, "hardkv: error: %s\n", e.message().c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hardkv: error: %s\n", e.what());
    return 1;
  }
  return 1;
}
