// Loading of tokenizer.json and tokenizer_config.json into a TokenizerImpl.
#pragma once

#include <memory>
#include <string>

#include "tokenizer/tokenizer_impl.h"

namespace hardkv {

// Parses tokenizer.json; every problem is an Error(kBadFile) (or kUnsupported for valid files
// hardkv cannot handle) whose message starts with the path.
std::unique_ptr<TokenizerImpl> load_tokenizer_json(const std::string& path);

// Parses tokenizer_config.json (bos_token, eos_token, add_bos_token, chat_template) when it
// exists; when there is no chat template, `jinja_path` (chat_template.jinja, written by newer
// transformers) is read if it exists.
TokenizerConfig load_tokenizer_config(const std::string& path, const std::string& jinja_path);

}  // namespace hardkv
