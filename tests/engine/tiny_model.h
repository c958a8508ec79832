// Test helper: one tiny random-weight checkpoint (Qwen3-style "tiny" preset, F32) written once per
// test binary into a temporary directory.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

#include "hardkv/engine_config.h"
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

// A small CPU engine for the tiny model: 256 blocks of 4 tokens, prefix caching off.
inline EngineConfig tiny_engine_config() {
  EngineConfig c;
  c.backend = "cpu";
  c.num_kv_blocks = 256;
  c.kv_block_size = 4;
  c.enable_prefix_caching = false;
  return c;
}

}  // namespace hardkv::test
