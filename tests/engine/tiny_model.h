// Test helper: one tiny random-weight checkpoint (Qwen3-style "tiny" preset, F32) written once per
// test binary into a temporary directory.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

#include "model/random_checkpoint.h"

namespace hardkv::test {

inline const std::string& tiny_model_dir() {
  static const std::string dir = [] {
    const std::filesystem::path p =
        std::filesystem::temp_directory_path() / ("hardkv_engine_tiny_" + std::to_string(getpid()));
    RandomCheckpointOptions opt;
    opt.seed = 7;
    opt.dtype = DType::kF32;
    write_random_checkpoint(model_preset("tiny"), p.string(), opt);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(std::filesystem::temp_directory_path() /
                                      ("hardkv_engine_tiny_" + std::to_string(getpid())),
                                  ec);
    });
    return p.string();
  }();
  return dir;
}

}  // namespace hardkv::test
