// Subcommand registry of the `hardkv` CLI: each cmd_*.cc registers itself by name, so adding a
// subcommand touches only its own file.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace hardkv::cli {

// setup() adds the subcommand's flags to `app` and returns the function that runs it (exit code).
using CommandSetup = std::function<std::function<int()>(CLI::App* app)>;

struct CommandRegistrar {
  CommandRegistrar(const std::string& name, const std::string& help, CommandSetup setup);
};

}  // namespace hardkv::cli
