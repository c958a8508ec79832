// `hardkv tokenize -m DIR TEXT`: prints the token ids of TEXT (space-separated, or JSON with ids
// and token strings); `--decode ID...` prints the text of ids instead. For checking tokenizers
// from the shell.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace hardkv::cli {
namespace {

struct TokenizeOptions {
  std::string model_dir;
  std::string text;
  std::string file;
  std::vector<int32_t> decode_ids;
  bool json = false;
  bool add_special_tokens = false;
  bool skip_special_tokens = false;
  bool split_special_tokens = false;
  bool chat = false;
  bool no_thinking = false;
};

std::string read_input(const TokenizeOptions& o) {
  if (o.file.empty()) return o.text;
  HARDKV_CHECK(o.text.empty(), kInvalidArgument, "give TEXT or --file, not both");
  if (o.file == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  std::ifstream in(o.file, std::ios::binary);
  HARDKV_CHECK(in.good(), kInvalidArgument, "cannot open --file {}", o.file);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

int run_decode(const Tokenizer& tok, const TokenizeOptions& o) {
  for (int32_t id : o.decode_ids) {
    HARDKV_CHECK(id >= 0 && id < tok.vocab_size(), kInvalidArgument,
                 "token id {} is outside the vocabulary [0, {})", id, tok.vocab_size());
  }
  const std::string text = tok.decode(o.decode_ids, o.skip_special_tokens);
  if (o.json) {
    nlohmann::json out = {{"ids", o.decode_ids}, {"text", text}};
    std::printf("%s\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::printf("\n");
  }
  return 0;
}

int run_encode(const Tokenizer& tok, const TokenizeOptions& o) {
  std::string text = read_input(o);
  if (o.chat) {
    std::optional<std::string> bos;
    if (tok.bos_id()) bos = tok.id_to_token(*tok.bos_id());
    const ChatTemplate tmpl = ChatTemplate::detect(tok.chat_template(), bos.value_or(""));
    ChatOptions chat_options;
    if (o.no_thinking) chat_options.enable_thinking = false;
    const ChatMessage message{"user", text};
    text = tmpl.render(std::span(&message, 1), chat_options);
  }
  const std::vector<int32_t> ids = tok.encode(text, o.add_special_tokens, !o.split_special_tokens);
  if (o.json) {
    nlohmann::json tokens = nlohmann::json::array();
    for (int32_t id : ids) tokens.push_back(tok.id_to_token(id));
    nlohmann::json out = {{"ids", ids}, {"tokens", tokens}, {"num_tokens", ids.size()}};
    if (o.chat) out["prompt"] = text;
    std::printf("%s\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::string line;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i > 0) line += ' ';
      line += std::to_string(ids[i]);
    }
    std::printf("%s\n", line.c_str());
  }
  return 0;
}

CommandRegistrar reg(
    "tokenize", "Print the token ids of a text (or, with --decode, the text of token ids)",
    [](CLI::App* app) {
      auto o = std::make_shared<TokenizeOptions>();
      app->add_option("-m,--model", o->model_dir,
                      "model directory holding tokenizer.json (and tokenizer_config.json)")
          ->required();
      auto* text = app->add_option("text", o->text,
                                   "text to tokenize (special tokens such as <|im_start|> "
                                   "written in it become their ids)");
      app->add_option("--file", o->file, "read the text to tokenize from this file ('-': stdin)");
      auto* decode = app->add_option("--decode", o->decode_ids,
                                     "decode these token ids to text instead of tokenizing");
      decode->expected(1, -1);
      app->add_flag("--json", o->json,
                    "print JSON: {ids, tokens, num_tokens} when tokenizing, {ids, text} when "
                    "decoding");
      app->add_flag("--add-special-tokens", o->add_special_tokens,
                    "add the tokenizer's BOS/post-processor tokens (e.g. <|begin_of_text|>)");
      auto* split =
          app->add_flag("--split-special-tokens", o->split_special_tokens,
                        "encode special tokens written in TEXT (e.g. <|im_end|>) as plain text");
      app->add_flag("--skip-special-tokens", o->skip_special_tokens,
                    "with --decode: leave special tokens out of the text");
      auto* chat =
          app->add_flag("--chat", o->chat,
                        "wrap the text as one user message in the model's chat template (ChatML or "
                        "Llama-3) with the assistant generation prompt, then tokenize");
      chat->excludes(split);
      app->add_flag("--no-thinking", o->no_thinking,
                    "with --chat on Qwen3: add the empty <think></think> block (enable_thinking="
                    "false)");
      return [o, decode, text, file = app->get_option("--file")]() {
        const Tokenizer tok = Tokenizer::from_dir(o->model_dir);
        if (decode->count() > 0) {
          HARDKV_CHECK(o->text.empty() && o->file.empty() && !o->chat, kInvalidArgument,
                       "--decode takes token ids only (no TEXT, --file or --chat)");
          return run_decode(tok, *o);
        }
        HARDKV_CHECK(text->count() > 0 || file->count() > 0, kInvalidArgument,
                     "give the TEXT to tokenize, --file PATH, or --decode ID...");
        return run_encode(tok, *o);
      };
    });

}  // namespace
}  // namespace hardkv::cli
