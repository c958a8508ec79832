// Runs the built `hardkv` binary for end-to-end tests: exit code, stdout and stderr of one call.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace hardkv::testing {

struct CliResult {
  int exit_code;
  std::string out;  // stdout
  std::string err;  // stderr
};

// `args` is appended to the binary's path and run through the shell (quote as in a shell).
inline CliResult run_hardkv(const std::string& args) {
  namespace fs = std::filesystem;
  static int counter = 0;
  const fs::path err_file = fs::temp_directory_path() /
                            ("hardkv_cli_err_" + std::to_string(getpid()) + "_" +
                             std::to_string(counter++));
  const std::string cmd =
      std::string(HARDKV_BINARY_DIR) + "/hardkv " + args + " 2>" + err_file.string();
  CliResult r{};
  FILE* p = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream e(err_file);
  r.err.assign(std::istreambuf_iterator<char>(e), {});
  fs::remove(err_file);
  return r;
}

}  // namespace hardkv::testing
