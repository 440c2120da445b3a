// The OpenAI routes of `moe serve` over real loopback HTTP: response shapes, greedy output equal
// to `moe run`, streaming, stop strings, usage and log-probabilities.
#include <gtest/gtest.h>

#include <cstdio>

#include "server_process.h"

namespace moe::server::testing {
namespace {

// Returns the stdout of `moe run` (greedy) for `prompt`.
std::string moe_run_greedy(const std::string& prompt, int n) {
  const std::string command = std::string(MOE_CLI_PATH) + " run -m " + default_model_path() + " -t 2 --temp 0 -n " +
                              std::to_string(n) + " -p '" + prompt + "' 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  std::string out;
  char buffer[512];
  size_t got;
  while ((got = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, got);
  pclose(pipe);
  return out;
}

class Api : public ::testing::Test {
 protected:
  ServerProcess server{{"--parallel", "4", "-c", "512"}};
};

TEST_F(Api, HealthAndModels) {
  const HttpReply health = get(server, "/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.json_body()["status"], "ok");
  const HttpReply models = get(server, "/v1/models");
  ASSERT_EQ(models.status, 200);
  const json body = models.json_body();
  EXPECT_EQ(body["object"], "list");
  ASSERT_EQ(body["data"].size(), 1u);
  EXPECT_EQ(body["data"][0]["id"], "kjv-moe-q8_0");
  EXPECT_EQ(body["data"][0]["object"], "model");
}

TEST_F(Api, GreedyCompletionEqualsMoeRun) {
  const std::string prompt = "And God said";
  const HttpReply r =
      post(server, "/v1/completions", json{{"prompt", prompt}, {"max_tokens", 24}, {"temperature", 0}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json body = r.json_body();
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(body["usage"]["completion_tokens"], 24);
  EXPECT_EQ(body["usage"]["total_tokens"].get<int>(),
            body["usage"]["prompt_tokens"].get<int>() + body["usage"]["completion_tokens"].get<int>());
  EXPECT_EQ(body["choices"][0]["text"].get<std::string>(), moe_run_greedy(prompt, 24));
}

TEST_F(Api, ChatCompletionShape) {
  const json request = {{"messages", {{{"role", "system"}, {"content", "Answer briefly."}},
                                      {{"role", "user"}, {"content", "Who made the heaven?"}}}},
                        {"max_completion_tokens", 12},
                        {"temperature", 0}};
  const HttpReply r = post(server, "/v1/chat/completions", request.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json body = r.json_body();
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(body["choices"][0]["message"]["role"], "assistant");
  EXPECT_TRUE(body["choices"][0]["message"]["content"].is_string());
  EXPECT_LE(body["usage"]["completion_tokens"].get<int>(), 12);
  EXPECT_GT(body["usage"]["prompt_tokens"].get<int>(), 5);
}

TEST_F(Api, StreamedTextEqualsWholeResponseAndEndsWithDone) {
  for (const char* path : {"/v1/completions", "/v1/chat/completions"}) {
    json request = {{"max_tokens", 20}, {"temperature", 0}};
    if (std::string(path) == "/v1/completions") {
      request["prompt"] = "In the beginning";
    } else {
      request["messages"] = {{{"role", "user"}, {"content", "In the beginning"}}};
    }
    const HttpReply whole = post(server, path, request.dump());
    ASSERT_EQ(whole.status, 200);
    request["stream"] = true;
    request["stream_options"] = {{"include_usage", true}};
    const StreamReply stream = post_stream(server, path, request.dump());
    EXPECT_EQ(stream.status, 200);
    ASSERT_TRUE(stream.complete()) << path;
    const json first = whole.json_body()["choices"][0];
    const std::string expected = first.contains("message") ? first["message"]["content"] : first["text"];
    EXPECT_EQ(stream.text(), expected) << path;
    // The last chunk before [DONE] carries the usage and no choices; the one before the finish reason.
    const json usage_chunk = json::parse(stream.events[stream.events.size() - 2]);
    EXPECT_TRUE(usage_chunk["choices"].empty());
    EXPECT_EQ(usage_chunk["usage"], whole.json_body()["usage"]);
    const json finish_chunk = json::parse(stream.events[stream.events.size() - 3]);
    EXPECT_EQ(finish_chunk["choices"][0]["finish_reason"], first["finish_reason"]);
  }
}

TEST_F(Api, StopStringEndsTheTextBeforeIt) {
  const json base = {{"prompt", "And God said"}, {"max_tokens", 40}, {"temperature", 0}};
  const std::string full = post(server, "/v1/completions", base.dump()).json_body()["choices"][0]["text"];
  ASSERT_GT(full.size(), 20u);
  // A stop string from the middle of the greedy text, spanning several tokens.
  const std::string stop = full.substr(10, 6);
  const std::string expected = full.substr(0, full.find(stop));
  json request = base;
  request["stop"] = {"never appears \x01", stop};
  const HttpReply r = post(server, "/v1/completions", request.dump());
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json_body()["choices"][0]["text"], expected);
  EXPECT_EQ(r.json_body()["choices"][0]["finish_reason"], "stop");
  request["stream"] = true;
  const StreamReply stream = post_stream(server, "/v1/completions", request.dump());
  ASSERT_TRUE(stream.complete());
  EXPECT_EQ(stream.text(), expected);
}

TEST_F(Api, LogprobsListEveryTokenWithAlternatives) {
  const json request = {{"messages", {{{"role", "user"}, {"content", "Let there be light"}}}},
                        {"max_tokens", 8},
                        {"temperature", 0},
                        {"logprobs", true},
                        {"top_logprobs", 3}};
  const HttpReply r = post(server, "/v1/chat/completions", request.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json body = r.json_body();
  const json& content = body["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), body["usage"]["completion_tokens"].get<size_t>());
  for (const json& t : content) {
    ASSERT_EQ(t["top_logprobs"].size(), 3u);
    EXPECT_LE(t["logprob"].get<double>(), 0.0);
    // Greedy: the chosen token is the most likely one.
    EXPECT_EQ(t["token"], t["top_logprobs"][0]["token"]);
    EXPECT_FLOAT_EQ(t["logprob"].get<float>(), t["top_logprobs"][0]["logprob"].get<float>());
  }
  const json completion = {{"prompt", "Let there be"}, {"max_tokens", 4}, {"temperature", 0}, {"logprobs", 2}};
  const json legacy = post(server, "/v1/completions", completion.dump()).json_body()["choices"][0]["logprobs"];
  EXPECT_EQ(legacy["tokens"].size(), 4u);
  EXPECT_EQ(legacy["token_logprobs"].size(), 4u);
  EXPECT_EQ(legacy["top_logprobs"][0].size(), 2u);
}

TEST_F(Api, SeveralChoicesAndSeededSampling) {
  const json request = {{"prompt", "And the earth"}, {"max_tokens", 16}, {"temperature", 1.0}, {"seed", 42}, {"n", 3}};
  const HttpReply a = post(server, "/v1/completions", request.dump());
  const HttpReply b = post(server, "/v1/completions", request.dump());
  ASSERT_EQ(a.status, 200);
  ASSERT_EQ(a.json_body()["choices"].size(), 3u);
  EXPECT_EQ(a.json_body()["choices"], b.json_body()["choices"]);  // same seed, same text
  EXPECT_EQ(a.json_body()["usage"]["completion_tokens"], 48);
  std::set<std::string> texts;
  const json body = a.json_body();
  for (const json& c : body["choices"]) texts.insert(c["text"].get<std::string>());
  EXPECT_GT(texts.size(), 1u);  // choices use different seeds
  // Streamed, each choice's chunks carry its index and end with its own finish reason.
  json streamed = request;
  streamed["stream"] = true;
  const StreamReply stream = post_stream(server, "/v1/completions", streamed.dump());
  ASSERT_TRUE(stream.complete());
  std::vector<std::string> text(3);
  int finished = 0;
  for (const std::string& event : stream.events) {
    if (event == "[DONE]") continue;
    const json choice = json::parse(event)["choices"][0];
    text[choice["index"].get<size_t>()] += choice["text"].get<std::string>();
    finished += choice["finish_reason"].is_null() ? 0 : 1;
  }
  EXPECT_EQ(finished, 3);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(text[i], body["choices"][i]["text"]) << "choice " << i;
}

TEST_F(Api, LogitBiasForcesAToken) {
  const json base = {{"prompt", "And God said"}, {"max_tokens", 8}, {"temperature", 0}, {"logprobs", 0}};
  const json plain = post(server, "/v1/completions", base.dump()).json_body()["choices"][0]["logprobs"]["tokens"];
  // +100 on token 100 makes it the greedy choice every time.
  json request = base;
  request["logit_bias"] = {{"100", 100}};
  const HttpReply r = post(server, "/v1/completions", request.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json forced = r.json_body()["choices"][0]["logprobs"]["tokens"];
  ASSERT_EQ(forced.size(), 8u);
  for (const json& token : forced) EXPECT_EQ(token, forced[0]);
  EXPECT_NE(forced, plain);
}

TEST_F(Api, MetricsArePrometheusText) {
  ASSERT_EQ(post(server, "/v1/completions", json{{"prompt", "And"}, {"max_tokens", 3}}.dump()).status, 200);
  EXPECT_EQ(post(server, "/v1/completions", "{").status, 400);
  // Requests are counted once their response is written, and the slot freed after the step that
  // finished it: poll briefly for both.
  const std::string ok_line = "moe_requests_total{route=\"/v1/completions\",status=\"200\"} 1";
  const std::string bad_line = "moe_requests_total{route=\"/v1/completions\",status=\"400\"} 1";
  HttpReply m;
  for (int i = 0; i < 100; ++i) {
    m = get(server, "/metrics");
    if (m.body.find(bad_line) != std::string::npos && metric(server, "moe_active_sequences") == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.body.find(ok_line), std::string::npos) << m.body;
  EXPECT_NE(m.body.find(bad_line), std::string::npos) << m.body;
  EXPECT_EQ(metric(server, "moe_generated_tokens_total"), 3);
  EXPECT_EQ(metric(server, "moe_active_sequences"), 0);
  EXPECT_EQ(metric(server, "moe_queue_depth"), 0);
  EXPECT_EQ(metric(server, "moe_time_to_first_token_seconds_count"), 1);
  EXPECT_GT(metric(server, "moe_prompt_tokens_total"), 0);
  EXPECT_NE(m.body.find("# TYPE moe_generation_tokens_per_second gauge"), std::string::npos);
  // The model fits in memory, so the expert store is off (auto) and has no metrics.
  EXPECT_EQ(m.body.find("moe_expert_store"), std::string::npos) << m.body;
}

TEST_F(Api, ChatPageIsServed) {
  const HttpReply page = get(server, "/");
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("<meta name=\"viewport\""), std::string::npos);
  EXPECT_NE(page.body.find("/v1/chat/completions"), std::string::npos);
}

}  // namespace
}  // namespace moe::server::testing
