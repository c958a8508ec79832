// Chat-template detection and the ChatML / Llama-3 renderers, written from the Jinja templates
// shipped in Qwen3's and Llama-3's tokenizer_config.json.
#include "tokenizer/chat_template.h"

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace hardkv {
namespace {

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}
bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Python's str.lstrip/rstrip/strip with a set of ASCII characters.
std::string_view lstrip_chars(std::string_view s, std::string_view chars) {
  const size_t b = s.find_first_not_of(chars);
  return b == std::string_view::npos ? std::string_view() : s.substr(b);
}
std::string_view rstrip_chars(std::string_view s, std::string_view chars) {
  const size_t e = s.find_last_not_of(chars);
  return e == std::string_view::npos ? std::string_view() : s.substr(0, e + 1);
}

// Python's str.isspace for one code point.
bool is_python_space(char32_t cp) { return (cp >= 0x1C && cp <= 0x1F) || utf8::is_whitespace(cp); }

// Jinja's |trim (Python str.strip(): Unicode whitespace on both ends).
std::string_view trim(std::string_view s) {
  size_t begin = 0;
  while (begin < s.size()) {
    char32_t cp = 0;
    const int len = utf8::decode_char(s, begin, cp);
    if (!is_python_space(cp)) break;
    begin += len;
  }
  size_t end = s.size();
  while (end > begin) {
    size_t start = end - 1;
    while (start > begin && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
    char32_t cp = 0;
    utf8::decode_char(s, start, cp);
    if (!is_python_space(cp)) break;
    end = start;
  }
  return s.substr(begin, end - begin);
}

// Qwen2/2.5 write a default system prompt as a literal:
// '<|im_start|>system\nYou are ... assistant.<|im_end|>\n' (with \n as an escape in the template).
std::string find_default_system(std::string_view tmpl) {
  constexpr std::string_view kOpen = "<|im_start|>system\\n";
  constexpr std::string_view kClose = "<|im_end|>";
  size_t pos = 0;
  while ((pos = tmpl.find(kOpen, pos)) != std::string_view::npos) {
    const size_t text_begin = pos + kOpen.size();
    const size_t close = tmpl.find(kClose, text_begin);
    if (close == std::string_view::npos) break;
    const std::string_view text = tmpl.substr(text_begin, close - text_begin);
    if (!text.empty() && text.find_first_of("'\"{}+\\") == std::string_view::npos) {
      return std::string(text);
    }
    pos = text_begin;
  }
  return "";
}

}  // namespace

ChatTemplate ChatTemplate::detect(std::string_view tmpl, std::string bos_token) {
  HARDKV_CHECK(!tmpl.empty(), kUnsupported,
               "the tokenizer has no chat template (tokenizer_config.json \"chat_template\")");
  ChatTemplate t;
  t.bos_token_ = std::move(bos_token);
  if (contains(tmpl, "<|im_start|>") && contains(tmpl, "<|im_end|>")) {
    t.format_ = ChatFormat::kChatML;
    t.default_system_ = find_default_system(tmpl);
    t.strips_thinking_ = contains(tmpl, "</think>") && contains(tmpl, "last_query_index");
    t.has_enable_thinking_ = contains(tmpl, "enable_thinking");
    t.qwen_roles_ = contains(tmpl, "<tool_response>");
    return t;
  }
  if (contains(tmpl, "<|start_header_id|>") && contains(tmpl, "<|end_header_id|>") &&
      contains(tmpl, "<|eot_id|>")) {
    HARDKV_CHECK(!contains(tmpl, "Cutting Knowledge Date"), kUnsupported,
                 "this is a Llama-3.1+ chat template (system header with knowledge/today dates, "
                 "tools); hardkv's built-in renderer implements the Llama-3.0 and ChatML templates "
                 "only");
    t.format_ = ChatFormat::kLlama3;
    t.always_generation_prompt_ = !contains(tmpl, "add_generation_prompt");
    return t;
  }
  HARDKV_THROW(kUnsupported,
               "unrecognised chat template: hardkv renders ChatML (<|im_start|>/<|im_end|>, "
               "Qwen) and Llama-3 (<|start_header_id|>/<|eot_id|>) templates only; template "
               "starts with: {}",
               tmpl.substr(0, 120));
}

std::string ChatTemplate::render(std::span<const ChatMessage> messages,
                                 const ChatOptions& options) const {
  HARDKV_CHECK(!messages.empty(), kInvalidArgument, "a chat needs at least one message");
  return format_ == ChatFormat::kChatML ? render_chatml(messages, options)
                                        : render_llama3(messages, options);
}

std::string ChatTemplate::render_chatml(std::span<const ChatMessage> messages,
                                        const ChatOptions& options) const {
  const int n = static_cast<int>(messages.size());
  std::string out;
  if (messages[0].role == "system") {
    out += "<|im_start|>system\n" + messages[0].content + "<|im_end|>\n";
  } else if (!default_system_.empty()) {
    out += "<|im_start|>system\n" + default_system_ + "<|im_end|>\n";
  }
  // Qwen3: the last user turn that is not a tool response; assistant turns after it keep their
  // reasoning, earlier ones lose it.
  int last_query_idx = n - 1;
  for (int i = n - 1; i >= 0; --i) {
    const ChatMessage& m = messages[i];
    if (m.role == "user" &&
        !(starts_with(m.content, "<tool_response>") && ends_with(m.content, "</tool_response>"))) {
      last_query_idx = i;
      break;
    }
  }
  for (int i = 0; i < n; ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "user" || (m.role == "system" && i > 0) ||
        (!qwen_roles_ && m.role != "system" && m.role != "assistant")) {
      out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    } else if (m.role == "system") {
      continue;  // written above
    } else if (m.role == "assistant") {
      if (!strips_thinking_) {
        out += "<|im_start|>assistant\n" + m.content + "<|im_end|>\n";
        continue;
      }
      std::string_view content = m.content;
      std::string_view reasoning;
      const size_t close = content.find("</think>");
      if (close != std::string_view::npos) {
        const std::string_view before = content.substr(0, close);  // split('</think>')[0]
        content = lstrip_chars(content.substr(content.rfind("</think>") + 8), "\n");
        reasoning = rstrip_chars(before, "\n");
        const size_t open = reasoning.rfind("<think>");  // split('<think>')[-1]
        if (open != std::string_view::npos) reasoning = reasoning.substr(open + 7);
        reasoning = lstrip_chars(reasoning, "\n");
      }
      out += "<|im_start|>assistant\n";
      if (i > last_query_idx && (i == n - 1 || !reasoning.empty())) {
        out += "<think>\n";
        out += rstrip_chars(lstrip_chars(reasoning, "\n"), "\n");
        out += "\n</think>\n\n";
        out += lstrip_chars(content, "\n");
      } else {
        out += content;
      }
      out += "<|im_end|>\n";
    } else if (m.role == "tool") {
      if (i == 0 || messages[i - 1].role != "tool") out += "<|im_start|>user";
      out += "\n<tool_response>\n" + m.content + "\n</tool_response>";
      if (i == n - 1 || messages[i + 1].role != "tool") out += "<|im_end|>\n";
    } else {
      HARDKV_THROW(kInvalidArgument,
                   "chat message {} has role \"{}\"; the ChatML template knows system, user, "
                   "assistant and tool",
                   i, m.role);
    }
  }
  if (options.add_generation_prompt) {
    out += "<|im_start|>assistant\n";
    if (has_enable_thinking_ && options.enable_thinking == false) out += "<think>\n\n</think>\n\n";
  }
  return out;
}

std::string ChatTemplate::render_llama3(std::span<const ChatMessage> messages,
                                        const ChatOptions& options) const {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i == 0) out += bos_token_;
    out += "<|start_header_id|>" + messages[i].role + "<|end_header_id|>\n\n";
    out += trim(messages[i].content);
    out += "<|eot_id|>";
  }
  if (options.add_generation_prompt || always_generation_prompt_) {
    out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  }
  return out;
}

}  // namespace hardkv
