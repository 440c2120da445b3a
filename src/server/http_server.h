// The HTTP front end of `moe serve` (cpp-httplib): OpenAI routes, SSE streaming, the chat page,
// health and metrics, bearer-key auth, optional CORS, and OpenAI-shaped errors for everything
// that goes wrong (bad JSON or fields, unknown routes, oversized bodies, a full queue).
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>

#include "core/result.h"
#include "model/model.h"
#include "runtime/chat.h"
#include "server/metrics.h"
#include "server/request.h"
#include "server/scheduler.h"
#include "tokenizer/vocab.h"

namespace httplib {
class Server;
}

namespace moe::server {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                    // 0: any free port
  std::string api_key;                // empty: no auth
  bool cors = false;
  size_t max_body_bytes = 8u << 20;   // larger bodies get 413
  int n_threads = 16;                 // connections served at once
  std::string model_name;             // the id /v1/models lists
};

class HttpServer {
 public:
  HttpServer(const model::Model& model, const tokenizer::Vocab& vocab, runtime::ChatSession chat_prototype,
             Scheduler& scheduler, Metrics& metrics, HttpOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the listening socket; returns the port.
  Result<int> bind();
  // Serves until stop(); returns afterwards.
  void serve();
  // Stops accepting and returns once in-flight streams ended or after a short grace period.
  void stop();

 private:
  struct Handlers;

  std::unique_ptr<httplib::Server> http_;
  std::unique_ptr<Handlers> handlers_;
  HttpOptions options_;
};

// The chat page served at "/": one self-contained HTML document.
const std::string& chat_page_html();

}  // namespace moe::server
