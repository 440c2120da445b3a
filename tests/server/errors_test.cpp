// Every error `moe serve` reports, each with its HTTP status and OpenAI-shaped JSON body
// {"error": {"message", "type", "param", "code"}}: the server must answer, never crash or hang.
#include <gtest/gtest.h>

#include "server_process.h"

namespace moe::server::testing {
namespace {

// Checks the error shape and returns the "error" object.
json expect_error(const HttpReply& r, int status, const std::string& type) {
  EXPECT_EQ(r.status, status) << r.body;
  const json body = r.json_body();
  EXPECT_TRUE(body.is_object() && body.contains("error")) << r.body;
  if (!body.is_object() || !body.contains("error")) return json::object();
  const json& e = body["error"];
  EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty());
  EXPECT_EQ(e["type"], type);
  EXPECT_TRUE(e.contains("param") && e.contains("code"));
  return e;
}

class Errors : public ::testing::Test {
 protected:
  ServerProcess server{{"--parallel", "2", "-c", "64", "--max-body-bytes", "4096"}};
};

TEST_F(Errors, MalformedJsonIs400) {
  const json e = expect_error(post(server, "/v1/chat/completions", "{\"messages\": [}"), 400, "invalid_request_error");
  EXPECT_EQ(e["code"], "invalid_json");
  EXPECT_NE(e["message"].get<std::string>().find("not valid JSON"), std::string::npos);
  expect_error(post(server, "/v1/completions", ""), 400, "invalid_request_error");
  const json not_object = expect_error(post(server, "/v1/completions", "[1, 2]"), 400, "invalid_request_error");
  EXPECT_NE(not_object["message"].get<std::string>().find("JSON object"), std::string::npos);
}

TEST_F(Errors, WrongTypesAndRangesNameTheField) {
  struct Case {
    const char* path;
    json body;
    const char* param;
  };
  const json messages = {{{"role", "user"}, {"content", "hi"}}};
  const std::vector<Case> cases = {
      {"/v1/completions", {{"prompt", "x"}, {"max_tokens", "ten"}}, "max_tokens"},
      {"/v1/completions", {{"prompt", "x"}, {"max_tokens", 0}}, "max_tokens"},
      {"/v1/completions", {{"prompt", 5}}, "prompt"},
      {"/v1/completions", json::object(), "prompt"},
      {"/v1/completions", {{"prompt", "x"}, {"temperature", 3.5}}, "temperature"},
      {"/v1/completions", {{"prompt", "x"}, {"temperature", "hot"}}, "temperature"},
      {"/v1/completions", {{"prompt", "x"}, {"top_p", -0.1}}, "top_p"},
      {"/v1/completions", {{"prompt", "x"}, {"stream", "yes"}}, "stream"},
      {"/v1/completions", {{"prompt", "x"}, {"stop", {1, 2}}}, "stop"},
      {"/v1/completions", {{"prompt", "x"}, {"n", 100}}, "n"},
      {"/v1/completions", {{"prompt", "x"}, {"seed", 1.5}}, "seed"},
      {"/v1/completions", {{"prompt", "x"}, {"logprobs", 9}}, "logprobs"},
      {"/v1/completions", {{"prompt", {1, 2, 999999}}}, "prompt"},
      {"/v1/completions", {{"prompt", "x"}, {"presence_penalty", 5}}, "presence_penalty"},
      {"/v1/completions", {{"prompt", "x"}, {"top_k", -1}}, "top_k"},
      {"/v1/completions", {{"prompt", "x"}, {"stream_options", {{"include_usage", 1}}}}, "stream_options.include_usage"},
      {"/v1/chat/completions", json::object(), "messages"},
      {"/v1/chat/completions", {{"messages", "hi"}}, "messages"},
      {"/v1/chat/completions", {{"messages", json::array()}}, "messages"},
      {"/v1/chat/completions", {{"messages", {{{"role", "wizard"}, {"content", "x"}}}}}, "messages[0].role"},
      {"/v1/chat/completions", {{"messages", {{{"role", "user"}}}}}, "messages[0].content"},
      {"/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", 7}}}}}, "messages[0].content"},
      {"/v1/chat/completions",
       {{"messages", {{{"role", "user"}, {"content", {{{"type", "image_url"}}}}}}}},
       "messages[0].content[0].type"},
      {"/v1/chat/completions", {{"messages", messages}, {"top_logprobs", 2}}, "top_logprobs"},
      {"/v1/chat/completions", {{"messages", messages}, {"logprobs", 1}}, "logprobs"},
      {"/v1/chat/completions", {{"messages", messages}, {"model", 3}}, "model"},
      {"/v1/chat/completions", {{"messages", messages}, {"logit_bias", {{"abc", 1}}}}, "logit_bias"},
      {"/v1/chat/completions", {{"messages", messages}, {"logit_bias", {{"5", 500}}}}, "logit_bias"},
      {"/v1/chat/completions", {{"messages", messages}, {"logit_bias", {{"99999999", 1}}}}, "logit_bias"},
      {"/v1/chat/completions", {{"messages", messages}, {"logit_bias", {1, 2}}}, "logit_bias"},
  };
  for (const Case& c : cases) {
    const json e = expect_error(post(server, c.path, c.body.dump()), 400, "invalid_request_error");
    EXPECT_EQ(e["param"], c.param) << c.body.dump();
    EXPECT_NE(e["message"].get<std::string>().find(c.param), std::string::npos) << e.dump();
  }
}

TEST_F(Errors, PromptOverTheContextIs400) {
  std::string prompt;
  for (int i = 0; i < 40; ++i) prompt += "And God saw the light. ";
  const json e = expect_error(post(server, "/v1/completions", json{{"prompt", prompt}}.dump()), 400,
                              "invalid_request_error");
  EXPECT_EQ(e["code"], "context_length_exceeded");
  EXPECT_EQ(e["param"], "prompt");
  const json chat = {{"messages", {{{"role", "user"}, {"content", prompt}}}}};
  EXPECT_EQ(expect_error(post(server, "/v1/chat/completions", chat.dump()), 400, "invalid_request_error")["param"],
            "messages");
  // A prompt that fits stops at the end of the context with "length".
  const HttpReply fits = post(server, "/v1/completions", json{{"prompt", "And God"}, {"max_tokens", 500}}.dump());
  ASSERT_EQ(fits.status, 200);
  EXPECT_EQ(fits.json_body()["choices"][0]["finish_reason"], "length");
  EXPECT_LE(fits.json_body()["usage"]["total_tokens"].get<int>(), 64 + 1);
}

TEST_F(Errors, UnknownRouteIs404) {
  const json e = expect_error(get(server, "/v2/nothing"), 404, "invalid_request_error");
  EXPECT_EQ(e["code"], "not_found");
  expect_error(post(server, "/v1/embeddings", "{}"), 404, "invalid_request_error");
  expect_error(get(server, "/v1/chat/completions"), 404, "invalid_request_error");
}

TEST_F(Errors, OversizedBodyIs413) {
  const std::string big = json{{"prompt", std::string(10000, 'a')}}.dump();
  const json e = expect_error(post(server, "/v1/completions", big), 413, "invalid_request_error");
  EXPECT_EQ(e["code"], "payload_too_large");
  EXPECT_EQ(get(server, "/health").status, 200);
}

TEST(ErrorsAuth, ApiKeyIsRequiredWhenSetAndCorsIsOptIn) {
  ServerProcess server({"--api-key", "sesame", "--cors"});
  const std::string body = json{{"prompt", "And"}, {"max_tokens", 2}}.dump();
  json e = expect_error(post(server, "/v1/completions", body), 401, "invalid_request_error");
  EXPECT_EQ(e["code"], "invalid_api_key");
  expect_error(post(server, "/v1/completions", body, {{"Authorization", "Bearer wrong"}}), 401, "invalid_request_error");
  expect_error(get(server, "/metrics"), 401, "invalid_request_error");
  EXPECT_EQ(post(server, "/v1/completions", body, {{"Authorization", "Bearer sesame"}}).status, 200);
  EXPECT_EQ(get(server, "/health").status, 200);
  const HttpReply models = get(server, "/v1/models", {{"Authorization", "Bearer sesame"}});
  EXPECT_EQ(models.status, 200);
  ASSERT_TRUE(models.headers.count("Access-Control-Allow-Origin"));
  EXPECT_EQ(models.headers.find("Access-Control-Allow-Origin")->second, "*");

  ServerProcess plain({});
  const HttpReply no_cors = get(plain, "/v1/models");
  EXPECT_EQ(no_cors.status, 200);
  EXPECT_FALSE(no_cors.headers.count("Access-Control-Allow-Origin"));
}

// One slot and a queue of one: a third request while the slot runs and the queue holds one is
// refused with 429; hanging up the running stream frees the slot for the queued one.
TEST(ErrorsQueue, FullQueueIs429AndAHangUpFreesTheSlot) {
  ServerProcess server({"--parallel", "1", "--max-queue", "1", "-c", "2048"});
  const json long_request = {{"prompt", "And God said"}, {"max_tokens", 2000}, {"stream", true}};
  std::atomic<bool> hang_up{false};
  std::thread running([&] {
    post_stream(server, "/v1/completions", long_request.dump(), [&](const auto&) { return !hang_up.load(); });
  });
  auto wait_for = [&](const char* name, double value) {
    for (int i = 0; i < 600 && metric(server, name) != value; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return metric(server, name) == value;
  };
  ASSERT_TRUE(wait_for("moe_active_sequences", 1));
  HttpReply queued_reply;
  std::thread queued([&] {
    queued_reply = post(server, "/v1/completions", json{{"prompt", "And"}, {"max_tokens", 3}}.dump());
  });
  ASSERT_TRUE(wait_for("moe_queue_depth", 1));
  const json e = expect_error(post(server, "/v1/completions", json{{"prompt", "And"}}.dump()), 429, "rate_limit_error");
  EXPECT_EQ(e["code"], "queue_full");
  hang_up = true;
  running.join();
  queued.join();
  EXPECT_EQ(queued_reply.status, 200);
  EXPECT_TRUE(wait_for("moe_active_sequences", 0));
  // The abandoned generation stopped long before its 2000 tokens.
  EXPECT_LT(metric(server, "moe_generated_tokens_total"), 1500);
}

}  // namespace
}  // namespace moe::server::testing
