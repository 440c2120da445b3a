#include "server/http_server.h"

#include <fmt/format.h>
#include <httplib.h>

#include <chrono>
#include <random>
#include <thread>

#include "core/log.h"
#include "server/client_connection.h"
#include "server/responses.h"
#include "tokenizer/tokenizer.h"

namespace moe::server {

namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;

// How long a stream may stay silent before a comment line is sent: a write is the only way to
// notice a client that went away while its request waits or its prompt is evaluated.
constexpr milliseconds kKeepAliveInterval{1000};
constexpr milliseconds kEventPoll{250};

void send_error(httplib::Response& res, const ApiError& error) {
  res.status = error.status;
  res.set_content(dump_json(error.to_json()), "application/json");
}

void send_json(httplib::Response& res, const json& body) { res.set_content(dump_json(body), "application/json"); }

// Metric label of a request path (unknown paths share one label so clients cannot grow the
// metric set).
std::string route_label(const std::string& path) {
  for (const char* known : {"/", "/health", "/metrics", "/v1/models", "/v1/completions", "/v1/chat/completions"}) {
    if (path == known) return path;
  }
  return "other";
}

ApiError error_for_status(const httplib::Request& req, int status) {
  switch (status) {
    case 404:
      return {404, fmt::format("unknown route: {} {}", req.method, req.path), "invalid_request_error", "", "not_found"};
    case 413:
      return {413, "the request body is too large", "invalid_request_error", "", "payload_too_large"};
    case 400:
      return {400, "the request is malformed", "invalid_request_error", "", ""};
    default:
      return {status, fmt::format("HTTP error {}", status), status >= 500 ? "server_error" : "invalid_request_error", "",
              ""};
  }
}

// The state of one streamed response, shared by httplib's content provider calls.
struct StreamState {
  ResponseHeader header;
  std::shared_ptr<ResponseChannel> channel;
  int n_choices = 1;
  bool include_usage = false;
  bool with_logprobs = false;
  int n_done = 0;
  int64_t n_prompt = 0;
  int64_t n_completion = 0;
  std::vector<bool> role_sent;
  std::vector<int64_t> text_offset;
  std::chrono::steady_clock::time_point last_write = std::chrono::steady_clock::now();
};

bool write_sse(httplib::DataSink& sink, StreamState& state, const std::string& data) {
  state.last_write = std::chrono::steady_clock::now();
  const std::string frame = "data: " + data + "\n\n";
  return sink.write(frame.data(), frame.size());
}

// Writes the chunks for one generation event; returns false when the client is gone.
bool write_event(httplib::DataSink& sink, StreamState& s, const tokenizer::Vocab& vocab, const GenerationEvent& e) {
  const auto index = static_cast<size_t>(e.index);
  const bool role = s.header.chat && !s.role_sent[index];
  s.role_sent[index] = true;
  if (e.kind == GenerationEvent::Kind::kText || role) {
    const json logprobs = s.with_logprobs && !e.logprobs.empty()
                              ? logprobs_json(s.header, vocab, e.logprobs, s.text_offset[index])
                              : json(nullptr);
    s.text_offset[index] += static_cast<int64_t>(e.text.size());
    const std::string* text = e.kind == GenerationEvent::Kind::kText || role ? &e.text : nullptr;
    if (!write_sse(sink, s, dump_json(chunk_json(s.header, e.index, text, role, logprobs, "", s.include_usage)))) {
      return false;
    }
  }
  if (e.kind != GenerationEvent::Kind::kDone) return true;
  ++s.n_done;
  s.n_prompt = e.n_prompt;
  s.n_completion += e.n_generated;
  if (e.finish_reason == "error") {
    const ApiError error{500, "generation failed: " + e.error, "server_error", "", ""};
    if (!write_sse(sink, s, dump_json(error.to_json()))) return false;
  }
  const json last = chunk_json(s.header, e.index, nullptr, false, nullptr, openai_finish_reason(e.finish_reason),
                               s.include_usage);
  return write_sse(sink, s, dump_json(last));
}

}  // namespace

struct HttpServer::Handlers {
  const model::Model& model;
  const tokenizer::Vocab& vocab;
  runtime::ChatSession chat_prototype;
  Scheduler& scheduler;
  Metrics& metrics;
  HttpOptions options;
  int64_t started = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch()).count();
  std::atomic<int> open_streams{0};

  void install(httplib::Server& http);
  void models(httplib::Response& res) const;
  void completions(const httplib::Request& req, httplib::Response& res, bool chat);
  std::optional<ApiError> prompt_tokens(const CompletionRequest& r, std::vector<int32_t>& out) const;
  void respond_streaming(httplib::Response& res, const CompletionRequest& r, std::shared_ptr<ResponseChannel> channel,
                         int64_t n_prompt);
  void respond_whole(const httplib::Request& req, httplib::Response& res, const CompletionRequest& r,
                     const std::shared_ptr<ResponseChannel>& channel, int64_t n_prompt) const;
  bool authorized(const httplib::Request& req) const;
};

void HttpServer::Handlers::install(httplib::Server& http) {
  http.set_payload_max_length(options.max_body_bytes);
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (options.cors) {
      res.set_header("Access-Control-Allow-Origin", "*");
      res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
      res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      if (req.method == "OPTIONS") {
        res.status = 204;
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    if (authorized(req)) return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, {401, "invalid or missing API key (expected 'Authorization: Bearer <key>')", "invalid_request_error",
                     "", "invalid_api_key"});
    return httplib::Server::HandlerResponse::Handled;
  });
  // Responses with a body already carry their own error JSON; the rest (unknown route, oversized
  // body) get one here.
  const httplib::Server::HandlerWithResponse on_error = [](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty() || res.is_chunked_content_provider_) return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, error_for_status(req, res.status));
    return httplib::Server::HandlerResponse::Handled;
  };
  http.set_error_handler(on_error);
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr error) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    MOE_LOG_WARN("moe serve: request failed: {}", what);
    send_error(res, {500, "internal error: " + what, "server_error", "", ""});
  });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics.count_request(route_label(req.path), res.status);
  });
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(chat_page_html(), "text/html; charset=utf-8");
  });
  http.Get("/health", [](const httplib::Request&, httplib::Response& res) { send_json(res, {{"status", "ok"}}); });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.render(), "text/plain; version=0.0.4");
  });
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) { models(res); });
  http.Post("/v1/completions",
            [this](const httplib::Request& req, httplib::Response& res) { completions(req, res, /*chat=*/false); });
  http.Post("/v1/chat/completions",
            [this](const httplib::Request& req, httplib::Response& res) { completions(req, res, /*chat=*/true); });
}

bool HttpServer::Handlers::authorized(const httplib::Request& req) const {
  if (options.api_key.empty()) return true;
  // The page and the health check stay public; the API and the metrics need the key.
  if (req.path == "/" || req.path == "/health") return true;
  return req.get_header_value("Authorization") == "Bearer " + options.api_key;
}

void HttpServer::Handlers::models(httplib::Response& res) const {
  const json entry = {{"id", options.model_name}, {"object", "model"}, {"created", started}, {"owned_by", "moe.cpp"}};
  send_json(res, {{"object", "list"}, {"data", json::array({entry})}});
}

std::optional<ApiError> HttpServer::Handlers::prompt_tokens(const CompletionRequest& r, std::vector<int32_t>& out) const {
  const char* field = r.chat ? "messages" : "prompt";
  if (r.chat) {
    runtime::ChatSession session = chat_prototype;
    for (const ChatMessage& m : r.messages) session.add_message(m.role, m.content);
    auto tokens = session.prompt_tokens();
    if (!tokens.ok()) return invalid_field(field, "the chat template failed: " + tokens.error().message);
    out = std::move(tokens).value();
  } else if (r.prompt_is_tokens) {
    for (int32_t id : r.prompt_tokens) {
      if (!vocab.is_valid(id)) {
        return invalid_field(field, fmt::format("'prompt' token id {} is out of range (vocabulary size {})", id,
                                                vocab.size()));
      }
    }
    out = r.prompt_tokens;
  } else {
    out = tokenizer::tokenize(vocab, r.prompt, /*add_special=*/true, /*parse_special=*/true);
  }
  if (out.empty()) return invalid_field(field, fmt::format("'{}' is empty", field));
  const int64_t n_ctx = scheduler.options().n_ctx;
  if (static_cast<int64_t>(out.size()) > n_ctx) {
    return ApiError{400,
                    fmt::format("this model's maximum context length is {} tokens, but the prompt has {} tokens", n_ctx,
                                out.size()),
                    "invalid_request_error", field, "context_length_exceeded"};
  }
  return std::nullopt;
}

void HttpServer::Handlers::completions(const httplib::Request& req, httplib::Response& res, bool chat) {
  json body;
  if (auto error = parse_json_body(req.body, body)) return send_error(res, *error);
  CompletionRequest r;
  if (auto error = parse_completion_request(body, chat, RequestLimits{}, r)) return send_error(res, *error);
  std::vector<int32_t> prompt;
  if (auto error = prompt_tokens(r, prompt)) return send_error(res, *error);
  for (const auto& [id, bias] : r.logit_bias) {
    if (!vocab.is_valid(id)) {
      return send_error(res, invalid_field("logit_bias", fmt::format("'logit_bias' token id {} is out of range "
                                                                     "(vocabulary size {})", id, vocab.size())));
    }
  }
  if (!r.seed_given) r.sampling.seed = std::random_device{}();
  std::vector<GenerationRequest> generations;
  for (int i = 0; i < r.n; ++i) {
    GenerationRequest g;
    g.prompt = prompt;
    g.max_tokens = r.max_tokens;
    g.sampling = r.sampling;
    g.sampling.seed = r.sampling.seed + static_cast<uint32_t>(i);  // distinct choices
    g.stop = r.stop;
    g.top_logprobs = r.logprobs ? r.top_logprobs : -1;
    g.ignore_eos = r.ignore_eos;
    g.logit_bias = r.logit_bias;
    generations.push_back(std::move(g));
  }
  auto channel = std::make_shared<ResponseChannel>();
  switch (scheduler.submit(std::move(generations), channel)) {
    case Scheduler::Admission::kQueueFull:
      return send_error(res, {429, "the server is busy: the request queue is full, retry later", "rate_limit_error", "",
                              "queue_full"});
    case Scheduler::Admission::kShuttingDown:
      return send_error(res, {503, "the server is shutting down", "server_error", "", "shutting_down"});
    case Scheduler::Admission::kQueued:
      break;
  }
  const auto n_prompt = static_cast<int64_t>(prompt.size());
  if (r.stream) return respond_streaming(res, r, std::move(channel), n_prompt);
  respond_whole(req, res, r, channel, n_prompt);
}

void HttpServer::Handlers::respond_whole(const httplib::Request& req, httplib::Response& res,
                                         const CompletionRequest& r, const std::shared_ptr<ResponseChannel>& channel,
                                         int64_t n_prompt) const {
  const ClientConnection client =
      ClientConnection::find(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
  if (!client.watched()) {
    MOE_LOG_DEBUG("moe serve: cannot watch the connection of {}:{}", req.remote_addr, req.remote_port);
  }
  std::vector<FinishedChoice> choices(static_cast<size_t>(r.n));
  int n_done = 0;
  int64_t n_completion = 0;
  std::string error;
  while (n_done < r.n) {
    if (!client.open()) {
      // Nobody will read the response: free the slots now rather than generate to the end.
      // (Queued generations are dropped without a last event, so do not wait for them.) 499 is
      // nginx's "client closed request", for the request counter.
      channel->cancel();
      return send_error(res, {499, "the client closed the connection", "invalid_request_error", "", "client_closed"});
    }
    for (GenerationEvent& e : channel->wait(kEventPoll)) {
      FinishedChoice& c = choices[static_cast<size_t>(e.index)];
      c.text += e.text;
      c.logprobs.insert(c.logprobs.end(), e.logprobs.begin(), e.logprobs.end());
      if (e.kind != GenerationEvent::Kind::kDone) continue;
      ++n_done;
      n_completion += e.n_generated;
      c.finish_reason = e.finish_reason;
      if (e.finish_reason == "error") error = e.error;
    }
  }
  if (!error.empty()) return send_error(res, {500, "generation failed: " + error, "server_error", "", ""});
  const ResponseHeader header = make_response_header(r.chat, options.model_name);
  send_json(res, completion_json(header, choices, r.logprobs, vocab, n_prompt, n_completion));
}

void HttpServer::Handlers::respond_streaming(httplib::Response& res, const CompletionRequest& r,
                                             std::shared_ptr<ResponseChannel> channel, int64_t n_prompt) {
  auto state = std::make_shared<StreamState>();
  state->header = make_response_header(r.chat, options.model_name);
  state->channel = std::move(channel);
  state->n_choices = r.n;
  state->include_usage = r.include_usage;
  state->with_logprobs = r.logprobs;
  state->n_prompt = n_prompt;
  state->role_sent.assign(static_cast<size_t>(r.n), false);
  state->text_offset.assign(static_cast<size_t>(r.n), 0);
  res.set_header("Cache-Control", "no-cache");
  ++open_streams;
  auto provider = [this, state](size_t, httplib::DataSink& sink) {
    StreamState& s = *state;
    const std::vector<GenerationEvent> events = s.channel->wait(kEventPoll);
    if (events.empty() && std::chrono::steady_clock::now() - s.last_write > kKeepAliveInterval) {
      s.last_write = std::chrono::steady_clock::now();
      static constexpr char kComment[] = ": keep-alive\n\n";
      if (!sink.write(kComment, sizeof(kComment) - 1)) return false;
    }
    for (const GenerationEvent& e : events) {
      if (!write_event(sink, s, vocab, e)) return false;
    }
    if (s.n_done < s.n_choices) return true;
    if (s.include_usage && !write_sse(sink, s, dump_json(usage_chunk_json(s.header, s.n_prompt, s.n_completion)))) {
      return false;
    }
    if (!write_sse(sink, s, "[DONE]")) return false;
    sink.done();
    return true;
  };
  // Runs when the response is done with, whether the stream completed or the client left:
  // cancelling a finished generation does nothing, an unfinished one frees its slot.
  auto release = [this, state](bool) {
    state->channel->cancel();
    --open_streams;
  };
  res.set_chunked_content_provider("text/event-stream", provider, release);
}

HttpServer::HttpServer(const model::Model& model, const tokenizer::Vocab& vocab, runtime::ChatSession chat_prototype,
                       Scheduler& scheduler, Metrics& metrics, HttpOptions options)
    : handlers_(new Handlers{model, vocab, std::move(chat_prototype), scheduler, metrics, options}),
      http_(std::make_unique<httplib::Server>()),
      options_(std::move(options)) {
  const int n_threads = std::max(options_.n_threads, 4);
  http_->new_task_queue = [n_threads] { return new httplib::ThreadPool(static_cast<size_t>(n_threads)); };
  handlers_->install(*http_);
}

HttpServer::~HttpServer() = default;

Result<int> HttpServer::bind() {
  if (options_.port == 0) {
    const int port = http_->bind_to_any_port(options_.host);
    if (port <= 0) return make_error("cannot listen on {} (any port)", options_.host);
    return port;
  }
  if (!http_->bind_to_port(options_.host, options_.port)) {
    return make_error("cannot listen on {}:{} (in use, or not a local address?)", options_.host, options_.port);
  }
  return options_.port;
}

void HttpServer::serve() { http_->listen_after_bind(); }

void HttpServer::stop() {
  // Streams get their last events from the (already stopped) scheduler; give them a moment to be
  // written before the sockets close.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (handlers_->open_streams > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  http_->stop();
}

}  // namespace moe::server
