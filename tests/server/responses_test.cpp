// Response shapes and JSON text: generated text that is not valid UTF-8 (stray bytes a model
// can emit) is sent with U+FFFD instead of failing the response.
#include <gtest/gtest.h>

#include "server/responses.h"

namespace moe::server {
namespace {

using json = nlohmann::json;

TEST(Responses, InvalidUtf8BecomesReplacementCharacter) {
  const std::string text = dump_json(json{{"content", "ok \xFF\xC3"}});
  EXPECT_EQ(text, "{\"content\":\"ok \xEF\xBF\xBD\xEF\xBF\xBD\"}");
}

TEST(Responses, ChatChunkShape) {
  ResponseHeader header = make_response_header(true, "m");
  EXPECT_EQ(header.id.rfind("chatcmpl-", 0), 0u);
  const std::string text = "hi";
  const json first = chunk_json(header, 0, &text, true, nullptr, "", true);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"], (json{{"role", "assistant"}, {"content", "hi"}}));
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  EXPECT_TRUE(first.contains("usage") && first["usage"].is_null());
  const json last = chunk_json(header, 0, nullptr, false, nullptr, "length", false);
  EXPECT_EQ(last["choices"][0]["delta"], json::object());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  EXPECT_FALSE(last.contains("usage"));
  const json usage = usage_chunk_json(header, 5, 7);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"], (json{{"prompt_tokens", 5}, {"completion_tokens", 7}, {"total_tokens", 12}}));
}

TEST(Responses, FinishReasons) {
  EXPECT_EQ(openai_finish_reason("stop"), "stop");
  EXPECT_EQ(openai_finish_reason("length"), "length");
  EXPECT_EQ(openai_finish_reason("cancelled"), "length");
}

}  // namespace
}  // namespace moe::server
