// Chat templates: the renderer against the strings the Jinja templates in the real Qwen3 and
// Llama-3 tokenizer_config.json produce (worked out by hand from the template text), format
// detection and its errors.
#include "tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "test_assets.h"

namespace hardkv {
namespace {

using Messages = std::vector<ChatMessage>;

ChatTemplate real_template(const std::string& name) {
  const Tokenizer* tok = test::real_tokenizer(name);
  EXPECT_NE(tok, nullptr);
  if (tok == nullptr) return ChatTemplate::detect("<|im_start|><|im_end|>");
  const std::string bos = tok->bos_id() ? tok->id_to_token(*tok->bos_id()) : "";
  return ChatTemplate::detect(tok->chat_template(), bos);
}

TEST(ChatTemplate, Qwen3SystemUserAndGenerationPrompt) {
  const ChatTemplate t = real_template("qwen3");
  EXPECT_EQ(t.format(), ChatFormat::kChatML);
  const Messages chat = {{"system", "You are helpful."}, {"user", "Hi!"}};
  EXPECT_EQ(t.render(chat),
            "<|im_start|>system\nYou are helpful.<|im_end|>\n"
            "<|im_start|>user\nHi!<|im_end|>\n"
            "<|im_start|>assistant\n");
  ChatOptions no_thinking;
  no_thinking.enable_thinking = false;
  EXPECT_EQ(t.render(chat, no_thinking),
            "<|im_start|>system\nYou are helpful.<|im_end|>\n"
            "<|im_start|>user\nHi!<|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n\n");
  ChatOptions no_prompt;
  no_prompt.add_generation_prompt = false;
  EXPECT_EQ(t.render(Messages{{"user", "Hi!"}}, no_prompt), "<|im_start|>user\nHi!<|im_end|>\n");
}

TEST(ChatTemplate, Qwen3DropsReasoningOfEarlierTurnsAndKeepsTheLastOne) {
  const ChatTemplate t = real_template("qwen3");
  // The assistant turn before the last user query loses its <think> block.
  const Messages multi = {
      {"user", "1+1?"}, {"assistant", "<think>\nadd them\n</think>\n\n2"}, {"user", "times 3?"}};
  EXPECT_EQ(t.render(multi),
            "<|im_start|>user\n1+1?<|im_end|>\n"
            "<|im_start|>assistant\n2<|im_end|>\n"
            "<|im_start|>user\ntimes 3?<|im_end|>\n"
            "<|im_start|>assistant\n");
  // An assistant turn after the last query, and last, keeps (or gets) a think block.
  ChatOptions no_prompt;
  no_prompt.add_generation_prompt = false;
  EXPECT_EQ(
      t.render(Messages{{"user", "hi"}, {"assistant", "<think>\nr\n</think>\n\nhello"}}, no_prompt),
      "<|im_start|>user\nhi<|im_end|>\n"
      "<|im_start|>assistant\n<think>\nr\n</think>\n\nhello<|im_end|>\n");
  EXPECT_EQ(t.render(Messages{{"user", "hi"}, {"assistant", "hello"}}, no_prompt),
            "<|im_start|>user\nhi<|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n\nhello<|im_end|>\n");
}

TEST(ChatTemplate, Qwen3ToolResponsesAreGroupedInOneUserTurn) {
  const ChatTemplate t = real_template("qwen3");
  const Messages chat = {{"user", "q"}, {"tool", "r1"}, {"tool", "r2"}};
  EXPECT_EQ(t.render(chat),
            "<|im_start|>user\nq<|im_end|>\n"
            "<|im_start|>user\n<tool_response>\nr1\n</tool_response>\n<tool_response>\nr2\n"
            "</tool_response><|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_THROW(t.render(Messages{{"narrator", "x"}}), Error);
  EXPECT_THROW(t.render(Messages{}), Error);
}

TEST(ChatTemplate, Qwen3RenderedPromptTokenises) {
  const Tokenizer* tok = test::real_tokenizer("qwen3");
  ASSERT_NE(tok, nullptr);
  const std::string prompt = real_template("qwen3").render(Messages{{"user", "hi"}});
  EXPECT_EQ(tok->encode(prompt),
            (std::vector<int32_t>{151644, 872, 198, 6023, 151645, 198, 151644, 77091, 198}));
}

TEST(ChatTemplate, Llama3HeadersBosAndTrim) {
  const ChatTemplate t = real_template("llama3");
  EXPECT_EQ(t.format(), ChatFormat::kLlama3);
  const Messages chat = {{"system", "  Be brief.\n"}, {"user", "Hi"}};
  const std::string expected =
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n";
  EXPECT_EQ(t.render(chat), expected);
  // This template writes the assistant header whether or not add_generation_prompt is set.
  ChatOptions no_prompt;
  no_prompt.add_generation_prompt = false;
  EXPECT_EQ(t.render(chat, no_prompt), expected);
  const Tokenizer* tok = test::real_tokenizer("llama3");
  ASSERT_NE(tok, nullptr);
  const auto ids = tok->encode(expected);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids[0], 128000);
  EXPECT_EQ(ids[1], *tok->token_to_id("<|start_header_id|>"));
  EXPECT_EQ(ids.back(), 271);  // "\n\n" (Ċ Ċ)
}

TEST(ChatTemplate, Qwen25DefaultSystemPrompt) {
  // The part of Qwen2.5's template that writes a default system prompt.
  const std::string qwen25 =
      "{%- if messages[0]['role'] == 'system' %}\n"
      "    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
      "{%- else %}\n"
      "    {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
      "assistant.<|im_end|>\\n' }}\n"
      "{%- endif %}";
  const ChatTemplate t = ChatTemplate::detect(qwen25);
  EXPECT_EQ(t.render(Messages{{"user", "hi"}}),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
            "assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t.render(Messages{{"system", "S"}, {"user", "hi"}}),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplate, PlainChatMLLoopWithEnableThinking) {
  // The minimal template `hardkv make-model` writes: every message as is, then the prompt.
  const std::string plain =
      "{%- for message in messages %}"
      "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
      "{%- endfor %}"
      "{%- if add_generation_prompt %}"
      "{{- '<|im_start|>assistant\\n' }}"
      "{%- if enable_thinking is defined and enable_thinking is false %}"
      "{{- '<think>\\n\\n</think>\\n\\n' }}"
      "{%- endif %}"
      "{%- endif %}";
  const ChatTemplate t = ChatTemplate::detect(plain);
  const Messages chat = {{"system", "S"},
                         {"user", "a"},
                         {"assistant", "<think>x</think>b"},
                         {"tool", "t"},
                         {"user", "c"}};
  const std::string turns =
      "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\na<|im_end|>\n"
      "<|im_start|>assistant\n<think>x</think>b<|im_end|>\n<|im_start|>tool\nt<|im_end|>\n"
      "<|im_start|>user\nc<|im_end|>\n";
  EXPECT_EQ(t.render(chat), turns + "<|im_start|>assistant\n");
  ChatOptions no_thinking;
  no_thinking.enable_thinking = false;
  EXPECT_EQ(t.render(chat, no_thinking), turns + "<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

TEST(ChatTemplate, UnrecognisedTemplatesAreClearErrors) {
  for (const std::string& tmpl :
       {std::string(), std::string("{% for m in messages %}{{ m.content }}{% endfor %}"),
        std::string("<|start_header_id|><|end_header_id|><|eot_id|>Cutting Knowledge Date")}) {
    try {
      ChatTemplate::detect(tmpl);
      ADD_FAILURE() << "accepted: " << tmpl;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
      EXPECT_NE(e.message().find("template"), std::string::npos) << e.message();
    }
  }
}

}  // namespace
}  // namespace hardkv
