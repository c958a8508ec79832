// A small, fixed chat-template renderer (not a Jinja engine): it recognises the ChatML template
// of Qwen2/Qwen2.5/Qwen3 and the Llama-3 header template by their markers in the
// tokenizer_config.json template string and renders what those templates produce for plain
// {role, content} conversations. Encode its output with add_special_tokens = false (the Llama-3
// rendering already starts with the BOS token, as the template writes it).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace hardkv {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant" (Qwen also "tool")
  std::string content;
};

struct ChatOptions {
  bool add_generation_prompt = true;
  // Qwen3 only: false appends an empty "<think>\n\n</think>\n\n" after the generation prompt
  // (the template's enable_thinking=false); unset or true leaves thinking to the model.
  std::optional<bool> enable_thinking;
};

enum class ChatFormat {
  kChatML,  // <|im_start|>role\ncontent<|im_end|>\n  (Qwen2, Qwen2.5, Qwen3)
  kLlama3,  // <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>  (Llama-3)
};

class ChatTemplate {
 public:
  // Recognises the template; throws Error(kUnsupported) naming what was expected when it is empty
  // or matches no known format. bos_token is what the Llama-3 template writes first.
  static ChatTemplate detect(std::string_view template_text, std::string bos_token = "");

  // Throws Error(kInvalidArgument) for an empty conversation or a role the template ignores.
  std::string render(std::span<const ChatMessage> messages, const ChatOptions& options = {}) const;

  ChatFormat format() const { return format_; }

 private:
  std::string render_chatml(std::span<const ChatMessage> messages,
                            const ChatOptions& options) const;
  std::string render_llama3(std::span<const ChatMessage> messages,
                            const ChatOptions& options) const;

  ChatFormat format_ = ChatFormat::kChatML;
  std::string bos_token_;
  std::string default_system_;        // ChatML: system prompt used when the first message is not
                                      // a system message ("" = none; Qwen2/2.5 have one)
  bool strips_thinking_ = false;      // ChatML: Qwen3's handling of <think> in assistant turns
  bool has_enable_thinking_ = false;  // ChatML: the template reads enable_thinking
  bool qwen_roles_ = false;  // ChatML: Qwen's role rules (tool turns as <tool_response> in a user
                             // turn, other roles rejected); otherwise every role is written as is
  bool always_generation_prompt_ = false;  // Llama-3.0's template ignores add_generation_prompt
};

}  // namespace hardkv
