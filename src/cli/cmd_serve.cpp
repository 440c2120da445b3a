// `moe serve`: the OpenAI-compatible HTTP server with continuous batching (src/server/). SIGTERM
// or SIGINT shut it down gracefully: running and queued generations end as cancelled, their
// streams are closed properly, and the process exits 0. A model larger than --mem-budget runs
// its routed experts through the expert store, as `moe run` does; /metrics then reports its cache.
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "cli/commands.h"
#include "cli/store_options.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "model/model.h"
#include "runtime/chat.h"
#include "server/http_server.h"
#include "server/scheduler.h"
#include "tokenizer/vocab.h"

namespace moe::cli {

namespace {

struct ServeOptions {
  std::string model_path;
  std::string alias;
  std::string cache_type = "f16";
  int threads = 0;
  int64_t kv_budget_mb = 0;
  server::SchedulerOptions scheduler;
  server::HttpOptions http;
  StoreCliOptions store;
  bool print_stats = false;
};

// Blocks the shutdown signals in the calling thread and every thread it starts afterwards, so
// one dedicated thread receives them with sigwait (no async-signal-safety concerns).
sigset_t block_shutdown_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // Writes to a client that went away must fail with EPIPE, not kill the process.
  signal(SIGPIPE, SIG_IGN);
  return set;
}

int serve(ServeOptions o) {
  const sigset_t signals = block_shutdown_signals();
  if (o.cache_type != "f16" && o.cache_type != "f32") {
    return report_error(fmt::format("unsupported cache type '{}' (f16 or f32)", o.cache_type));
  }
  if (o.scheduler.n_parallel < 1 || o.scheduler.max_queue < 0 || o.scheduler.n_ctx < 1 || o.scheduler.n_batch < 1) {
    return report_error("--parallel, --ctx-size and --batch-size must be positive and --max-queue not negative");
  }
  auto model = model::Model::load(o.model_path);
  if (!model.ok()) return report_error(model.error().message);
  auto vocab = tokenizer::load_vocab((*model)->file());
  if (!vocab.ok()) return report_error(vocab.error().message);
  auto chat = runtime::ChatSession::create((*model)->file(), *vocab);
  if (!chat.ok()) return report_error(chat.error().message);
  if (chat->used_fallback_template()) MOE_LOG_WARN("moe serve: the model has no chat template; using ChatML");

  ThreadPool pool(resolve_threads(o.threads));
  o.scheduler.kv_type = o.cache_type == "f32" ? model::KvType::kF32 : model::KvType::kF16;
  o.scheduler.kv_budget_bytes = static_cast<size_t>(o.kv_budget_mb) << 20;
  // The store's budget leaves room for every sequence's KV cache and one step's activations.
  const size_t kv_bytes = server::Scheduler::kv_budget((*model)->hparams(), o.scheduler);
  auto store = make_store(**model, o.store, kv_bytes, o.scheduler.n_batch, o.scheduler.n_ctx);
  if (!store.ok()) return report_error(store.error().message);
  server::Metrics metrics;
  metrics.set_expert_store(store->get());
  server::Scheduler scheduler(**model, *vocab, pool, o.scheduler, metrics, store->get());
  if (o.http.model_name.empty()) {
    o.http.model_name = o.alias.empty() ? std::filesystem::path(o.model_path).stem().string() : o.alias;
  }
  // Every running or queued request holds a connection thread; a few more serve the rest.
  o.http.n_threads = o.scheduler.n_parallel + o.scheduler.max_queue + 8;
  server::HttpServer http(**model, *vocab, std::move(chat).value(), scheduler, metrics, o.http);
  auto port = http.bind();
  if (!port.ok()) return report_error(port.error().message);

  std::thread signal_thread([&] {
    int received = 0;
    sigwait(&signals, &received);
    MOE_LOG_INFO("moe serve: signal {} received, shutting down", received);
    scheduler.shutdown();
    http.stop();
  });
  std::printf("moe serve: listening on http://%s:%d (model %s, %d slots, %d threads)\n", o.http.host.c_str(), *port,
              o.http.model_name.c_str(), o.scheduler.n_parallel, pool.size());
  std::fflush(stdout);
  http.serve();
  // serve() also returns if the listener fails; wake the signal thread so it can finish.
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  if (o.print_stats) print_store_stats(store->get());
  return 0;
}

}  // namespace

CommandRunner add_serve_command(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* sub = app.add_subcommand("serve", "OpenAI-compatible HTTP server with continuous batching");
  sub->add_option("-m,--model", o->model_path, "GGUF model file")->required();
  sub->add_option("--host", o->http.host, "Address to listen on")->capture_default_str();
  sub->add_option("--port", o->http.port, "Port (0: any free port)")->capture_default_str();
  sub->add_option("-t,--threads", o->threads, "Threads (default: physical cores)");
  sub->add_option("-c,--ctx-size", o->scheduler.n_ctx, "Context size per sequence")->capture_default_str();
  sub->add_option("--parallel,--np", o->scheduler.n_parallel, "Sequences run together at most")->capture_default_str();
  sub->add_option("--max-queue", o->scheduler.max_queue, "Requests waiting for a slot at most (more get 429)")
      ->capture_default_str();
  sub->add_option("-b,--batch-size", o->scheduler.n_batch, "Tokens per step at most (prompt chunks + decoding)")
      ->capture_default_str();
  sub->add_option("--kv-budget-mb", o->kv_budget_mb, "KV cache memory for all sequences (default: parallel x ctx)");
  sub->add_option("--cache-type-k,--ctk", o->cache_type, "KV cache type: f16 or f32")->capture_default_str();
  sub->add_option("--api-key", o->http.api_key, "Require 'Authorization: Bearer <key>' on /v1 and /metrics");
  sub->add_flag("--cors", o->http.cors, "Send CORS headers allowing any origin");
  sub->add_option("--max-body-bytes", o->http.max_body_bytes, "Largest request body (413 above)")->capture_default_str();
  sub->add_option("-a,--alias", o->alias, "Model id reported by /v1/models (default: file name)");
  add_store_stats_flag(*sub, o->print_stats);
  add_store_options(*sub, o->store);
  return [o] { return serve(*o); };
}

}  // namespace moe::cli
