// Continuous batching seen from clients: concurrent greedy streams get exactly the text they get
// alone, a client hanging up (streamed or not) frees its slot, SIGTERM shuts down cleanly
// mid-stream, and a soak loop of normal, malformed and cancelled requests leaves the server
// healthy.
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>

#include "server_process.h"

namespace moe::server::testing {
namespace {

std::vector<std::string> prompts(int n) {
  const std::vector<std::string> starts = {"And God said", "In the beginning", "And the earth", "Blessed are",
                                           "And Moses",    "The LORD is",      "And it came to pass", "Thou shalt"};
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(starts[static_cast<size_t>(i) % starts.size()] + (i >= 8 ? " unto" : ""));
  return out;
}

json greedy_chat(const std::string& prompt, int max_tokens) {
  return {{"messages", {{{"role", "user"}, {"content", prompt}}}},
          {"max_tokens", max_tokens},
          {"temperature", 0},
          {"stream", true}};
}

bool wait_for_metric(const ServerProcess& server, const char* name, double value) {
  for (int i = 0; i < 1200 && metric(server, name) != value; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return metric(server, name) == value;
}

TEST(Batching, SixteenConcurrentStreamsMatchTheirTextAlone) {
  constexpr int kClients = 16;
  ServerProcess server({"--parallel", "16", "-c", "256"});
  const std::vector<std::string> ps = prompts(kClients);
  std::vector<std::string> alone(kClients);
  for (int i = 0; i < kClients; ++i) {
    const StreamReply r = post_stream(server, "/v1/chat/completions", greedy_chat(ps[i], 32).dump());
    ASSERT_TRUE(r.complete());
    alone[i] = r.text();
    ASSERT_FALSE(alone[i].empty());
  }
  const double steps_before = metric(server, "moe_steps_total");
  const double tokens_before = metric(server, "moe_generated_tokens_total");
  std::vector<StreamReply> together(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] { together[i] = post_stream(server, "/v1/chat/completions", greedy_chat(ps[i], 32).dump()); });
  }
  for (std::thread& t : clients) t.join();
  for (int i = 0; i < kClients; ++i) {
    EXPECT_TRUE(together[i].complete()) << "client " << i;
    EXPECT_EQ(together[i].text(), alone[i]) << "client " << i;
  }
  // They really shared steps: far fewer steps than tokens generated.
  const double steps = metric(server, "moe_steps_total") - steps_before;
  const double tokens = metric(server, "moe_generated_tokens_total") - tokens_before;
  EXPECT_LT(steps * 4, tokens) << steps << " steps for " << tokens << " tokens";
  EXPECT_TRUE(wait_for_metric(server, "moe_active_sequences", 0));
}

TEST(Batching, ClientHangingUpMidStreamFreesItsSlot) {
  ServerProcess server({"--parallel", "2", "-c", "2048"});
  const json request = {{"prompt", "And God said"}, {"max_tokens", 2000}, {"stream", true}, {"temperature", 0.8}};
  // Hang up after three chunks.
  const StreamReply cut = post_stream(server, "/v1/completions", request.dump(),
                                      [](const std::vector<std::string>& events) { return events.size() < 3; });
  EXPECT_FALSE(cut.complete());
  EXPECT_TRUE(wait_for_metric(server, "moe_active_sequences", 0));
  const HttpReply after = post(server, "/v1/completions", json{{"prompt", "And"}, {"max_tokens", 4}}.dump());
  EXPECT_EQ(after.status, 200);
  EXPECT_EQ(get(server, "/health").status, 200);
}

// A client that hangs up while its whole (non-streamed) response is being generated: nothing
// is written to it until the end, so the server watches the connection and cancels the
// generation at once instead of running it to max_tokens. The server then answers the next
// request as before.
TEST(Batching, ClientHangingUpBeforeAWholeResponseFreesItsSlot) {
  constexpr int kMaxTokens = 8000;
  ServerProcess server({"--parallel", "2", "-c", "8192"});
  for (const std::string path : {"/v1/completions", "/v1/chat/completions"}) {
    SCOPED_TRACE(path);
    json request = {{"max_tokens", 16}, {"temperature", 0}, {"ignore_eos", true}};
    if (path == "/v1/completions") {
      request["prompt"] = "And God said";
    } else {
      request["messages"] = {{{"role", "user"}, {"content", "And God said"}}};
    }
    const HttpReply reference = post(server, path, request.dump());
    ASSERT_EQ(reference.status, 200) << reference.body;
    ASSERT_TRUE(wait_until([&] { return metric(server, "moe_active_sequences") == 0; }));

    const double generated_before = metric(server, "moe_generated_tokens_total");
    json long_request = request;
    long_request["max_tokens"] = kMaxTokens;
    const int fd = post_without_reading(server, path, long_request.dump());
    ASSERT_GE(fd, 0);
    // Hang up once the generation is under way.
    const bool generating = wait_until([&] { return metric(server, "moe_generated_tokens_total") > generated_before; });
    close(fd);
    ASSERT_TRUE(generating);
    EXPECT_TRUE(wait_until([&] { return metric(server, "moe_active_sequences") == 0; }, std::chrono::seconds(30)));
    // Cancelled, not finished: far fewer tokens than asked for.
    EXPECT_LT(metric(server, "moe_generated_tokens_total") - generated_before, kMaxTokens / 2);

    const HttpReply after = post(server, path, request.dump());
    ASSERT_EQ(after.status, 200) << after.body;
    EXPECT_EQ(after.json_body()["choices"], reference.json_body()["choices"]);
  }
  // The abandoned requests are counted with nginx's "client closed request" status.
  EXPECT_TRUE(wait_until([&] {
    return get(server, "/metrics").body.find("route=\"/v1/chat/completions\",status=\"499\"} 1") != std::string::npos;
  }));
}

TEST(Batching, SigtermMidStreamShutsDownCleanly) {
  ServerProcess server({"--parallel", "2", "-c", "2048"});
  std::atomic<int> chunks{0};
  StreamReply reply;
  std::thread client([&] {
    reply = post_stream(server, "/v1/completions",
                        json{{"prompt", "And God said"}, {"max_tokens", 2000}, {"stream", true}}.dump(),
                        [&](const std::vector<std::string>& events) {
                          chunks = static_cast<int>(events.size());
                          return true;
                        });
  });
  while (chunks < 2) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(server.terminate(), 0);
  client.join();
  // The stream was closed properly (finish chunk and [DONE]) or cut by the closing socket; either
  // way the client returned and the process exited 0.
  if (reply.complete()) {
    EXPECT_EQ(json::parse(reply.events[reply.events.size() - 2])["choices"][0]["finish_reason"], "length");
  }
}

// A long prompt is evaluated in chunks of about --batch-size tokens over many steps, and the
// stream already running gets a token at every one of them instead of waiting for the whole
// prompt (counted in events between the long request's arrival and its first token).
TEST(Batching, LongPromptIsFedInChunksWhileAStreamContinues) {
  ServerProcess server({"--parallel", "2", "-c", "1024", "-b", "16"});
  std::string long_prompt;
  for (int i = 0; i < 100; ++i) long_prompt += "And God saw the light. ";
  std::atomic<size_t> running_events{0};
  std::atomic<bool> done{false};
  std::thread running([&] {
    post_stream(server, "/v1/completions",
                json{{"prompt", "And God said"}, {"max_tokens", 900}, {"temperature", 0}, {"stream", true}}.dump(),
                [&](const std::vector<std::string>& events) {
                  running_events = events.size();
                  return !done.load();
                });
  });
  while (running_events < 3) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const size_t at_arrival = running_events;
  size_t at_first_token = 0;
  const StreamReply late = post_stream(
      server, "/v1/completions", json{{"prompt", long_prompt}, {"max_tokens", 4}, {"stream", true}}.dump(),
      [&](const std::vector<std::string>& events) {
        if (at_first_token == 0 && !events.empty()) at_first_token = running_events;
        return true;
      });
  done = true;
  running.join();
  ASSERT_TRUE(late.complete());
  EXPECT_GE(at_first_token, at_arrival + 5) << "the running stream stalled while the long prompt was evaluated";
  // Steps stayed small: the prompt (hundreds of tokens) was not evaluated in one step.
  EXPECT_LT(metric(server, "moe_step_tokens_total") / metric(server, "moe_steps_total"), 40);
}

// A bounded loop mixing normal, streamed, malformed and abandoned requests from several clients.
// MOE_SOAK_SECONDS sets its length (the default suite runs a short one; the `long` label 600 s).
TEST(Soak, MixedTrafficLeavesTheServerHealthy) {
  const char* env = std::getenv("MOE_SOAK_SECONDS");
  const int seconds = env != nullptr ? std::atoi(env) : 8;
  ServerProcess server({"--parallel", "4", "--max-queue", "8", "-c", "256", "--max-body-bytes", "65536"});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  std::atomic<int> unexpected{0}, requests{0};
  auto worker = [&](int id) {
    std::mt19937 rng(static_cast<uint32_t>(id));
    while (std::chrono::steady_clock::now() < deadline) {
      ++requests;
      switch (rng() % 5) {
        case 0: {
          const HttpReply r = post(server, "/v1/completions", json{{"prompt", "And God"}, {"max_tokens", 8}}.dump());
          if (r.status != 200 && r.status != 429) ++unexpected;
          break;
        }
        case 1: {
          const StreamReply r = post_stream(server, "/v1/chat/completions", greedy_chat("Who", 8).dump());
          if (r.status == 200 && !r.complete()) ++unexpected;
          break;
        }
        case 2: {
          const HttpReply r = post(server, "/v1/chat/completions", "{\"messages\": [{\"role\": 1}");
          if (r.status != 400) ++unexpected;
          break;
        }
        case 3: {
          const size_t keep = 1 + rng() % 4;
          post_stream(server, "/v1/completions", json{{"prompt", "And"}, {"max_tokens", 200}, {"stream", true}}.dump(),
                      [&](const std::vector<std::string>& events) { return events.size() < keep; });
          break;
        }
        default: {
          const HttpReply r = post(server, "/v1/completions", std::string(70000, '{'));
          if (r.status != 413 && r.status != 0) ++unexpected;
          break;
        }
      }
    }
  };
  std::vector<std::thread> workers;
  for (int i = 0; i < 6; ++i) workers.emplace_back(worker, i);
  for (std::thread& t : workers) t.join();
  EXPECT_EQ(unexpected, 0) << "of " << requests << " requests";
  EXPECT_TRUE(wait_for_metric(server, "moe_active_sequences", 0));
  EXPECT_EQ(metric(server, "moe_queue_depth"), 0);
  EXPECT_EQ(post(server, "/v1/completions", json{{"prompt", "And"}, {"max_tokens", 2}}.dump()).status, 200);
  EXPECT_EQ(server.terminate(), 0);
}

}  // namespace
}  // namespace moe::server::testing
