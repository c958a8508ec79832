// Helpers for the io tests: a fresh temporary directory per test, raw file writing and a check
// that a call throws hardkv::Error of a given kind whose message holds given substrings.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"

namespace hardkv::test {

// A directory under the test temp root, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::path(::testing::TempDir()) / "hardkv_io_XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    EXPECT_NE(p, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const {
    return (std::filesystem::path(path_) / name).string();
  }

 private:
  std::string path_;
};

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A safetensors file built by hand: u64 little-endian header length, header text, data bytes.
inline std::string safetensors_bytes(const std::string& header, const std::string& data,
                                     uint64_t header_len_override = UINT64_MAX) {
  uint64_t len = header_len_override == UINT64_MAX ? header.size() : header_len_override;
  std::string out;
  for (int i = 0; i < 8; ++i) out += static_cast<char>((len >> (8 * i)) & 0xff);
  return out + header + data;
}

// Runs fn, expects hardkv::Error of `kind` whose message contains every string in `parts`.
inline void expect_error(const std::function<void()>& fn, ErrorKind kind,
                         const std::vector<std::string>& parts) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << "message: " << e.message();
    for (const std::string& p : parts) {
      EXPECT_NE(e.message().find(p), std::string::npos)
          << "message '" << e.message() << "' lacks '" << p << "'";
    }
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-hardkv exception: " << e.what();
    return;
  }
  ADD_FAILURE() << "did not throw";
}

}  // namespace hardkv::test
