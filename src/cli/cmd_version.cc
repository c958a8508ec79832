// `hardkv version`: prints the version and which backends this build has.
#include <cstdio>

#include "cli/command.h"

namespace hardkv::cli {
namespace {

CommandRegistrar reg("version", "Print the version and the backends compiled in", [](CLI::App*) {
  return []() {
#ifdef HARDKV_WITH_CUDA
    std::printf("hardkv 0.1.0 (backends: cpu, cuda sm_90a)\n");
#else
    std::printf("hardkv 0.1.0 (backends: cpu)\n");
#endif
    return 0;
  };
});

}  // namespace
}  // namespace hardkv::cli
