// `moe bench`: llama-bench's interface and output (-p, -n, -t, -r, -o md|json with avg_ts and
// stddev_ts), plus achieved decode bandwidth against this machine's measured read bandwidth.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/kernel_options.h"
#include "cli/store_options.h"
#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "model/context.h"
#include "model/model.h"
#include "runtime/bandwidth.h"

namespace moe::cli {

namespace {

struct BenchOptions {
  std::string model_path;
  std::string prompt_sizes = "512";
  std::string gen_sizes = "128";
  std::string thread_counts;
  int repetitions = 5;
  std::string output = "md";
  bool measure_bandwidth = true;
  StoreCliOptions store;
  int64_t token_walk = 0;
  KernelOptions kernels;  // --amx, --exact
};

struct BenchRecord {
  int64_t n_prompt = 0;
  int64_t n_gen = 0;
  int n_threads = 0;
  std::vector<double> samples_ts;
  double avg_ts = 0.0;
  double stddev_ts = 0.0;
  std::optional<experts::StoreStats> store;  // over the timed repetitions
};

Result<std::vector<int64_t>> parse_list(const std::string& text, const char* option) {
  std::vector<int64_t> values;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    try {
      size_t used = 0;
      const long long v = std::stoll(item, &used);
      if (used != item.size() || v < 0) throw std::invalid_argument(item);
      values.push_back(v);
    } catch (const std::exception&) {
      return make_error("{}: '{}' is not a non-negative integer", option, item);
    }
  }
  return values;
}

// Bytes of weights one decoded token reads: every tensor, except the routed experts not chosen
// (only k of n are read) and the token embedding (one row).
double active_bytes_per_token(const model::Model& m) {
  const model::HParams& hp = m.hparams();
  double bytes = 0.0;
  for (const auto& t : m.file().tensors()) {
    double share = 1.0;
    if (t.name.find("_exps.") != std::string::npos && hp.moe.is_moe()) {
      share = static_cast<double>(hp.moe.n_expert_used) / hp.moe.n_expert;
    }
    if (t.name == "token_embd.weight") share = 1.0 / static_cast<double>(hp.n_vocab);
    bytes += static_cast<double>(t.n_bytes) * share;
  }
  if (m.file().find_tensor("output.weight") == nullptr) {
    bytes += static_cast<double>(m.file().find_tensor("token_embd.weight")->n_bytes);  // tied output
  }
  return bytes;
}

// Pseudo-random tokens; each repetition draws its own (`stream`), so an expert cache warmed by one
// repetition does not get the same routing again in the next.
// With `walk` > 0 each token is the previous one plus a step in [-walk, walk] (mod n_vocab): a
// stream that drifts through the id space, as text drifts between subjects (see moe gen
// --router-topics).
std::vector<int32_t> bench_tokens(int64_t n, int64_t n_vocab, uint64_t stream, int64_t walk = 0) {
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  uint64_t state = 12345 + stream * 0x9e3779b97f4a7c15ull;
  int64_t previous = -1;
  for (auto& t : tokens) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const auto draw = static_cast<int64_t>(state >> 33);
    if (walk > 0 && previous >= 0) {
      previous = ((previous + draw % (2 * walk + 1) - walk) % n_vocab + n_vocab) % n_vocab;
    } else {
      previous = draw % n_vocab;
    }
    t = static_cast<int32_t>(previous);
  }
  return tokens;
}

// Times one test: n_prompt tokens in one batch, or n_gen tokens decoded one at a time.
Result<double> run_once(model::InferenceContext& ctx, int64_t n_prompt, int64_t n_gen, int64_t n_vocab,
                        uint64_t stream, int64_t walk) {
  ctx.reset();
  const std::vector<int32_t> tokens = bench_tokens(std::max(n_prompt, n_gen), n_vocab, stream, walk);
  const auto start = std::chrono::steady_clock::now();
  if (n_prompt > 0) {
    MOE_TRY(ctx.eval(std::span<const int32_t>(tokens.data(), static_cast<size_t>(n_prompt))));
  }
  for (int64_t i = 0; i < n_gen; ++i) MOE_TRY(ctx.eval(std::span<const int32_t>(&tokens[static_cast<size_t>(i)], 1)));
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int64_t bench_n_ctx(int64_t n_prompt, int64_t n_gen) { return std::max<int64_t>(n_prompt + n_gen, 16); }

Result<BenchRecord> run_test(const model::Model& m, experts::ExpertStore* store, int threads, int64_t n_prompt,
                             int64_t n_gen, int reps, int64_t walk) {
  ThreadPool pool(threads);
  model::ContextParams params;
  params.n_ctx = bench_n_ctx(n_prompt, n_gen);
  MOE_ASSIGN_OR_RETURN(auto ctx, model::InferenceContext::create(m, params, pool));
  ctx->set_expert_source(store);
  MOE_TRY(run_once(*ctx, std::min<int64_t>(n_prompt, 8), n_prompt > 0 ? 0 : 1, m.hparams().n_vocab, 0, walk));  // warm-up
  if (store != nullptr) store->reset_stats();
  BenchRecord r{n_prompt, n_gen, threads, {}, 0.0, 0.0, std::nullopt};
  for (int i = 0; i < reps; ++i) {
    MOE_ASSIGN_OR_RETURN(double seconds, run_once(*ctx, n_prompt, n_gen, m.hparams().n_vocab, static_cast<uint64_t>(i) + 1, walk));
    r.samples_ts.push_back(static_cast<double>(n_prompt + n_gen) / seconds);
  }
  double sum = 0.0, sq = 0.0;
  for (double v : r.samples_ts) sum += v;
  r.avg_ts = sum / static_cast<double>(r.samples_ts.size());
  for (double v : r.samples_ts) sq += (v - r.avg_ts) * (v - r.avg_ts);
  r.stddev_ts = r.samples_ts.size() > 1 ? std::sqrt(sq / static_cast<double>(r.samples_ts.size() - 1)) : 0.0;
  if (store != nullptr) r.store = store->stats();
  return r;
}

nlohmann::ordered_json store_json(const experts::StoreStats& s) {
  return {{"tokens", s.tokens}, {"expert_uses", s.expert_uses}, {"hit_rate", s.hit_rate()}, {"hits", s.hits},
          {"late_prefetches", s.late_prefetches}, {"misses", s.misses}, {"reads", s.reads},
          {"prefetch_reads", s.prefetch_reads}, {"prefetch_used", s.prefetch_used}, {"evictions", s.evictions},
          {"bytes_read", s.bytes_read}, {"bytes_per_token", s.bytes_per_token()},
          {"stall_ms_per_token", 1e3 * s.stall_seconds_per_token()}, {"prefetch_precision", s.precision()},
          {"prefetch_recall", s.recall()}, {"expert_uses_per_layer", s.uses}};
}

std::string test_name(const BenchRecord& r) {
  return r.n_prompt > 0 ? fmt::format("pp{}", r.n_prompt) : fmt::format("tg{}", r.n_gen);
}

int run_bench(const BenchOptions& o) {
  if (o.output != "md" && o.output != "json") return report_error("-o must be md or json");
  if (o.repetitions <= 0) return report_error("-r must be positive");
  auto prompts = parse_list(o.prompt_sizes, "-p");
  auto gens = parse_list(o.gen_sizes, "-n");
  auto threads = parse_list(o.thread_counts.empty() ? std::to_string(physical_core_count()) : o.thread_counts, "-t");
  for (auto* list : {&prompts, &gens, &threads}) {
    if (!list->ok()) return report_error(list->error().message);
  }
  auto model = model::Model::load(o.model_path);
  if (!model.ok()) return report_error(model.error().message);
  // Sized for the largest test: the KV cache of its context (f16, as the contexts below use).
  int64_t max_ctx = 16, max_prompt = 1;
  for (int64_t p : *prompts) max_prompt = std::max(max_prompt, p);
  for (int64_t p : *prompts) {
    for (int64_t n : *gens) max_ctx = std::max(max_ctx, bench_n_ctx(p, n));
  }
  const model::HParams& hp = (*model)->hparams();
  const uint64_t kv_bytes = static_cast<uint64_t>(hp.n_layer * max_ctx * (hp.n_embd_k_gqa() + hp.n_embd_v_gqa()) * 2);
  auto store = make_store(**model, o.store, kv_bytes, std::min<int64_t>(max_prompt, 512), max_ctx);
  if (!store.ok()) return report_error(store.error().message);
  const model::Model& m = **model;
  const double bytes_per_token = active_bytes_per_token(m);
  double bandwidth = 0.0;
  if (o.measure_bandwidth) {
    ThreadPool pool(static_cast<int>(threads->back()));
    bandwidth = runtime::measure_read_bandwidth_gbps(pool);
  }
  std::vector<BenchRecord> records;
  for (int64_t t : *threads) {
    for (int64_t p : *prompts) {
      if (p == 0) continue;
      auto r = run_test(m, store->get(), static_cast<int>(t), p, 0, o.repetitions, o.token_walk);
      if (!r.ok()) return report_error(r.error().message);
      records.push_back(*r);
    }
    for (int64_t n : *gens) {
      if (n == 0) continue;
      auto r = run_test(m, store->get(), static_cast<int>(t), 0, n, o.repetitions, o.token_walk);
      if (!r.ok()) return report_error(r.error().message);
      records.push_back(*r);
    }
  }
  const std::string model_name = std::filesystem::path(o.model_path).filename().string();
  const auto counts = m.parameter_counts();
  size_t file_bytes = 0;
  for (const auto& t : m.file().tensors()) file_bytes += t.n_bytes;
  if (o.output == "json") {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const BenchRecord& r : records) {
      const double gbps = r.n_gen > 0 ? r.avg_ts * bytes_per_token / 1e9 : 0.0;
      out.push_back({{"build_commit", "moe.cpp"}, {"cpu_info", describe_cpu_features()},
                     {"model_filename", o.model_path}, {"model_type", m.hparams().arch},
                     {"model_size", file_bytes}, {"model_n_params", counts.total},
                     {"model_n_params_active", counts.active}, {"n_threads", r.n_threads},
                     {"n_prompt", r.n_prompt}, {"n_gen", r.n_gen}, {"avg_ts", r.avg_ts},
                     {"stddev_ts", r.stddev_ts}, {"samples_ts", r.samples_ts},
                     {"active_bytes_per_token", bytes_per_token}, {"decode_gbps", gbps},
                     {"read_bandwidth_gbps", bandwidth},
                     {"roofline_pct", bandwidth > 0 && r.n_gen > 0 ? 100.0 * gbps / bandwidth : 0.0},
                     {"prefill_kernels", prefill_kernels_description()}});
      if (r.store) out.back()["expert_store"] = store_json(*r.store);
    }
    fmt::print("{}\n", out.dump(2));
    return 0;
  }
  fmt::print("| model | size | params | active | threads | test | t/s | GB/s (decode) |\n");
  fmt::print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const BenchRecord& r : records) {
    const std::string gbps = r.n_gen > 0 ? fmt::format("{:.1f}", r.avg_ts * bytes_per_token / 1e9) : "";
    fmt::print("| {} | {:.2f} GiB | {:.2f} B | {:.2f} B | {} | {} | {:.2f} ± {:.2f} | {} |\n", model_name,
               static_cast<double>(file_bytes) / (1 << 30), counts.total / 1e9, counts.active / 1e9, r.n_threads,
               test_name(r), r.avg_ts, r.stddev_ts, gbps);
  }
  for (const BenchRecord& r : records) {
    if (r.store) fmt::print("\n{} at {} threads, {}", test_name(r), r.n_threads, experts::format_store_stats(*r.store, false));
  }
  fmt::print("\nprefill kernels: {}\n", prefill_kernels_description());
  if (bandwidth > 0) {
    fmt::print("\nmeasured read bandwidth: {:.1f} GB/s ({} threads); active bytes per token: {:.1f} MB\n", bandwidth,
               threads->back(), bytes_per_token / 1e6);
    for (const BenchRecord& r : records) {
      if (r.n_gen == 0) continue;
      const double gbps = r.avg_ts * bytes_per_token / 1e9;
      fmt::print("{} at {} threads: {:.1f} GB/s = {:.0f}% of the read bandwidth\n", test_name(r), r.n_threads, gbps,
                 100.0 * gbps / bandwidth);
    }
  }
  return 0;
}

}  // namespace

CommandRunner add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* sub = app.add_subcommand("bench", "Benchmark prompt processing and generation (llama-bench style)");
  sub->add_option("-m,--model", o->model_path, "GGUF model file")->required();
  sub->add_option("-p,--n-prompt", o->prompt_sizes, "Prompt sizes, comma separated")->capture_default_str();
  sub->add_option("-n,--n-gen", o->gen_sizes, "Generation lengths, comma separated")->capture_default_str();
  sub->add_option("-t,--threads", o->thread_counts, "Thread counts, comma separated (default: physical cores)");
  sub->add_option("-r,--repetitions", o->repetitions, "Repetitions per test")->capture_default_str();
  sub->add_option("-o,--output", o->output, "Output format: md or json")->capture_default_str();
  sub->add_flag("!--no-bandwidth", o->measure_bandwidth, "Skip measuring the memory read bandwidth");
  sub->add_option("--token-walk", o->token_walk,
                  "Tokens drift: each is the previous one +- up to this many ids (0: independent random tokens)")
      ->capture_default_str();
  add_store_options(*sub, o->store);
  add_kernel_options(*sub, o->kernels);
  return [o] {
    apply_kernel_options(o->kernels);
    return run_bench(*o);
  };
}

}  // namespace moe::cli
