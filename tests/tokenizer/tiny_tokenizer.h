// Builds small tokenizer.json files for tests: the 256 byte-level tokens (id = byte value),
// chosen merges (written as "a b" strings or ["a","b"] pairs) and added tokens, with the Qwen2
// Split + ByteLevel pre-tokenizer. The byte-to-character table is GPT-2's bytes_to_unicode,
// written out here independently of the code under test.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace hardkv::test {

inline const char* kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// GPT-2 bytes_to_unicode: the character standing for byte b, UTF-8 encoded.
inline std::string byte_char(int b) {
  int cp = b;
  if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) {
    int n = 0;
    for (int x = 0; x < b; ++x) {
      if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) ++n;
    }
    cp = 256 + n;
  }
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else {
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return s;
}

struct TinyAdded {
  std::string content;
  bool special = true;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
};

struct TinySpec {
  std::vector<std::pair<std::string, std::string>> merges;  // in byte-level characters
  std::vector<std::string> extra_vocab;                     // tokens not made by merges
  std::vector<TinyAdded> added;
  bool merges_as_pairs = false;
  bool ignore_merges = false;
  nlohmann::json normalizer = nullptr;
  nlohmann::json pre_tokenizer;  // null: Qwen2 Split + ByteLevel(use_regex=false)
  nlohmann::json post_processor = nullptr;
};

// The tokenizer.json; ids: bytes 0-255, then merge results and extra_vocab in order, then added.
inline nlohmann::json tiny_tokenizer_json(const TinySpec& spec) {
  nlohmann::json vocab = nlohmann::json::object();
  int next_id = 0;
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = next_id++;
  nlohmann::json merges = nlohmann::json::array();
  for (const auto& [a, b] : spec.merges) {
    if (!vocab.contains(a + b)) vocab[a + b] = next_id++;
    if (spec.merges_as_pairs) {
      merges.push_back({a, b});
    } else {
      merges.push_back(a + " " + b);
    }
  }
  for (const auto& t : spec.extra_vocab) {
    if (!vocab.contains(t)) vocab[t] = next_id++;
  }
  nlohmann::json added = nlohmann::json::array();
  for (const auto& t : spec.added) {
    added.push_back({{"id", next_id++},
                     {"content", t.content},
                     {"single_word", false},
                     {"lstrip", t.lstrip},
                     {"rstrip", t.rstrip},
                     {"normalized", t.normalized},
                     {"special", t.special}});
  }
  nlohmann::json pre = spec.pre_tokenizer;
  if (pre.is_null()) {
    pre = {{"type", "Sequence"},
           {"pretokenizers",
            {{{"type", "Split"},
              {"pattern", {{"Regex", kQwen2Regex}}},
              {"behavior", "Isolated"},
              {"invert", false}},
             {{"type", "ByteLevel"},
              {"add_prefix_space", false},
              {"trim_offsets", false},
              {"use_regex", false}}}}};
  }
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", spec.normalizer},
          {"pre_tokenizer", pre},
          {"post_processor", spec.post_processor},
          {"decoder",
           {{"type", "ByteLevel"},
            {"add_prefix_space", false},
            {"trim_offsets", false},
            {"use_regex", false}}},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", ""},
            {"end_of_word_suffix", ""},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"ignore_merges", spec.ignore_merges},
            {"vocab", vocab},
            {"merges", merges}}}};
}

// A fresh directory under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("hardkv-tok-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string write(const std::string& name, const std::string& content) const {
    std::ofstream(file(name), std::ios::binary) << content;
    return file(name);
  }
  std::string dir() const { return path_.string(); }

 private:
  static int& counter() {
    static int c = 0;
    return c;
  }
  std::filesystem::path path_;
};

inline Tokenizer load_tiny(const TinySpec& spec, const TempDir& dir,
                           const std::string& name = "tokenizer.json") {
  return Tokenizer::from_file(dir.write(name, tiny_tokenizer_json(spec).dump()));
}

}  // namespace hardkv::test
