// The chat-level API: the variables a template sees, error results, strftime_now, and one
// small template rendered end to end.
#include "tokenizer/chat_template.h"

#include <gtest/gtest.h>

namespace moe::tokenizer {
namespace {

using nlohmann::ordered_json;

const char* const kChatMl =
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

TEST(ChatTemplate, RendersChatMl) {
  ChatTemplateInputs in;
  in.messages = ordered_json::parse(R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])");
  in.add_generation_prompt = true;
  auto out = render_chat_template(kChatMl, in);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, ContextHasHuggingFaceVariables) {
  ChatTemplateInputs in;
  in.bos_token = "<s>";
  in.eos_token = "</s>";
  in.extra_context = {{"enable_thinking", false}, {"bos_token", "<bos>"}};
  ordered_json ctx = build_chat_template_context(in);
  EXPECT_TRUE(ctx["tools"].is_null());
  EXPECT_TRUE(ctx["documents"].is_null());
  EXPECT_EQ(ctx["add_generation_prompt"], false);
  EXPECT_EQ(ctx["eos_token"], "</s>");
  EXPECT_EQ(ctx["bos_token"], "<bos>");  // extra_context wins
  EXPECT_EQ(ctx["enable_thinking"], false);
  auto out = render_chat_template(
      "{{ tools is defined }} {{ tools is none }} {{ enable_thinking }} {{ bos_token }}{{ eos_token }}", in);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, "True True False <bos></s>");
}

TEST(ChatTemplate, ToolsKeepKeyOrderInTojson) {
  ChatTemplateInputs in;
  in.tools = ordered_json::parse(R"([{"type": "function", "function": {"name": "f", "parameters": {"z": 1, "a": 2}}}])");
  auto out = render_chat_template("{{ tools[0] | tojson }}\n{{ tools[0].function | tojson(indent=2) }}", in);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out,
            "{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"z\": 1, \"a\": 2}}}\n"
            "{\n  \"name\": \"f\",\n  \"parameters\": {\n    \"z\": 1,\n    \"a\": 2\n  }\n}");
}

TEST(ChatTemplate, RaiseExceptionIsAnErrorWithTheMessage) {
  ChatTemplateInputs in;
  in.messages = ordered_json::parse(R"([{"role": "tool", "content": "x"}])");
  auto out = render_chat_template(
      "{% for m in messages %}{% if m.role not in ['user', 'assistant'] %}"
      "{{ raise_exception('Conversation roles must be user or assistant') }}{% endif %}{% endfor %}",
      in);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().message, "template line 1: raise_exception: Conversation roles must be user or assistant");
}

TEST(ChatTemplate, StrftimeNowUsesTheGivenTime) {
  ChatTemplateInputs in;
  in.now_unix_seconds = 1721995200;  // 2024-07-26 12:00:00 UTC
  auto out = render_chat_template("{{ strftime_now('%d %b %Y') }}", in);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, "26 Jul 2024");
}

TEST(ChatTemplate, ParseOnceRenderMany) {
  auto tmpl = ChatTemplate::parse(kChatMl);
  ASSERT_TRUE(tmpl.ok()) << tmpl.error().message;
  for (int i = 0; i < 3; ++i) {
    ChatTemplateInputs in;
    in.messages = ordered_json::array({{{"role", "user"}, {"content", std::to_string(i)}}});
    auto out = tmpl->render(in);
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(*out, "<|im_start|>user\n" + std::to_string(i) + "<|im_end|>\n");
  }
}

TEST(ChatTemplate, SyntaxErrorIsAResult) {
  auto out = render_chat_template("{% for m in messages %}{{ m.content }}", ChatTemplateInputs{});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message.find("endfor"), std::string::npos) << out.error().message;
}

}  // namespace
}  // namespace moe::tokenizer
