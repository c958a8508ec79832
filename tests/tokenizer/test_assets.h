// Locates the third-party test assets fetched by tools/fetch-test-assets.sh (HARDKV_TEST_ASSETS,
// else ~/.cache/hardkv/test-assets) and loads the real tokenizers once per test binary.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "tokenizer/tokenizer.h"

namespace hardkv::test {

inline std::string test_assets_dir() {
  if (const char* env = std::getenv("HARDKV_TEST_ASSETS"); env != nullptr && *env != '\0') {
    return env;
  }
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return std::string(xdg) + "/hardkv/test-assets";
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "") + "/.cache/hardkv/test-assets";
}

// Path of an asset; the calling test fails (never skips) when it is missing.
inline std::string asset_path(const std::string& relative) {
  const std::string path = test_assets_dir() + "/" + relative;
  EXPECT_TRUE(std::filesystem::exists(path))
      << "test asset " << path << " is missing: run tools/fetch-test-assets.sh "
      << "(or set HARDKV_TEST_ASSETS to its output directory)";
  return path;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// "qwen3" or "llama3", loaded from tokenizers/<name>/ once; nullptr (and a failure) if missing.
inline const Tokenizer* real_tokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> loaded;
  auto it = loaded.find(name);
  if (it == loaded.end()) {
    const std::string dir = test_assets_dir() + "/tokenizers/" + name;
    std::unique_ptr<Tokenizer> tok;
    if (std::filesystem::exists(asset_path("tokenizers/" + name + "/tokenizer.json"))) {
      tok = std::make_unique<Tokenizer>(Tokenizer::from_dir(dir));
    }
    it = loaded.emplace(name, std::move(tok)).first;
  }
  return it->second.get();
}

}  // namespace hardkv::test
