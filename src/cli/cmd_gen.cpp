// `moe gen`: writes a model of a named architecture and shape with random weights, for tests,
// benchmarks and the embedded default. Deterministic for a seed.
#include <fmt/format.h>

#include <cstring>
#include <optional>
#include <string>

#include "cli/commands.h"
#include "cli/progress.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "model/random_model.h"
#include "tokenizer/vocab.h"

namespace moe::cli {

namespace {

struct GenOptions {
  std::string arch = "llama";
  std::string preset = "tiny-moe";
  std::string type_name = "f32";
  std::string vocab_path;
  std::string output_path;
  uint64_t seed = 42;
  int threads = 0;
  bool quiet = false;
  std::optional<int64_t> n_layer, n_embd, n_ff, n_head, n_head_kv, n_ctx_train;
  std::optional<int> n_expert, n_expert_used;
  float output_scale = 3.0f;
  float router_skew = 0.0f;
  int router_topics = 0;
  float topic_strength = 1.0f;
  std::string from_path;
};

// Copies every key and tensor of `from` into `writer`, scaling the rows of its (f32) routers by
// router_row_scale: the same weights with skewed routing, without regenerating (and
// requantizing) gigabytes of experts.
Status copy_with_skewed_routers(const formats::GgufFile& from, float skew, uint64_t seed, formats::GgufWriter& writer) {
  for (const auto& [key, value] : from.metadata()) writer.set(key, value);
  for (const formats::GgufTensorInfo& t : from.tensors()) {
    auto scale = model::router_row_scale(t.name, t.shape, skew, seed);
    if (scale && t.type != DType::kF32) return make_error("router '{}' is not f32; cannot skew it", t.name);
    const uint8_t* src = t.data;
    const int64_t n_cols = t.shape[0];
    MOE_TRY(writer.add_tensor_lazy(t.name, t.type, t.shape, [src, scale, n_cols](std::span<uint8_t> out) {
      std::memcpy(out.data(), src, out.size());
      if (scale) {
        auto* rows = reinterpret_cast<float*>(out.data());
        const int64_t n_rows = static_cast<int64_t>(out.size() / sizeof(float)) / n_cols;
        for (int64_t r = 0; r < n_rows; ++r) {
          for (int64_t c = 0; c < n_cols; ++c) rows[r * n_cols + c] *= scale(r);
        }
      }
      return ok_status();
    }));
  }
  return ok_status();
}

// Applies the shape overrides and re-derives the architecture's dependent fields from the new
// shape. Without overrides the preset is kept exactly (deepseek-v2-lite sets fields that the
// width-derived defaults would replace).
void apply_overrides(const GenOptions& o, model::HParams& hp) {
  const bool any = o.n_layer || o.n_embd || o.n_ff || o.n_head || o.n_head_kv || o.n_ctx_train || o.n_expert ||
                   o.n_expert_used;
  if (!any) return;
  if (o.n_layer) hp.n_layer = *o.n_layer;
  if (o.n_embd) hp.n_embd = *o.n_embd;
  if (o.n_ff) hp.n_ff = hp.n_ff_expert = *o.n_ff;
  if (o.n_head) hp.n_head = *o.n_head;
  if (o.n_head_kv) hp.n_head_kv = *o.n_head_kv;
  if (o.n_ctx_train) hp.n_ctx_train = *o.n_ctx_train;
  if (o.n_expert) hp.moe.n_expert = *o.n_expert;
  if (o.n_expert_used) hp.moe.n_expert_used = *o.n_expert_used;
  if (o.n_embd || o.n_head) {
    hp.head_dim_k = hp.head_dim_v = hp.n_head > 0 ? hp.n_embd / hp.n_head : 0;
    hp.n_rot = hp.head_dim_k;
  }
  model::apply_arch_defaults(hp);
}

// Copies every tokenizer.* key of a vocab GGUF (e.g. ../shared/testdata/vocab/*.gguf) and
// returns the vocabulary size.
Result<int64_t> copy_vocab(const std::string& path, formats::GgufWriter& writer) {
  MOE_ASSIGN_OR_RETURN(formats::GgufFile vocab, formats::GgufFile::open(path));
  const formats::GgufValue* tokens = vocab.find("tokenizer.ggml.tokens");
  if (tokens == nullptr || !tokens->is_array()) return make_error("'{}' has no tokenizer.ggml.tokens array", path);
  for (const auto& [key, value] : vocab.metadata()) {
    if (key.rfind("tokenizer.", 0) == 0) writer.set(key, value);
  }
  return static_cast<int64_t>(tokens->array_size());
}

int run_gen_from(const GenOptions& o) {
  if (o.router_topics > 0) return report_error("--router-topics draws new embeddings; it cannot be combined with --from");
  auto from = formats::GgufFile::open(o.from_path);
  if (!from.ok()) return report_error(from.error().message);
  formats::GgufWriter writer;
  if (Status s = copy_with_skewed_routers(*from, o.router_skew, o.seed, writer); !s.ok()) return report_error(s.error().message);
  ProgressBar progress("writing " + o.output_path, !o.quiet);
  writer.set_progress([&](size_t done, size_t total) { progress.update(done, total); });
  if (Status s = writer.write(o.output_path); !s.ok()) return report_error(s.error().message);
  return 0;
}

int run_gen(const GenOptions& o) {
  if (o.output_path.empty()) return report_error("gen needs an output file (-o FILE)");
  if (!o.from_path.empty()) return run_gen_from(o);
  auto type = dtype_from_name(o.type_name);
  if (!type) return report_error(fmt::format("unknown weight type '{}'", o.type_name));
  auto hp = model::preset_hparams(o.arch, o.preset);
  if (!hp.ok()) return report_error(hp.error().message);
  apply_overrides(o, *hp);

  formats::GgufWriter writer;
  if (!o.vocab_path.empty()) {
    auto n_vocab = copy_vocab(o.vocab_path, writer);
    if (!n_vocab.ok()) return report_error(n_vocab.error().message);
    hp->n_vocab = *n_vocab;
  } else {
    const tokenizer::VocabData vocab = tokenizer::builtin_byte_vocab();
    tokenizer::write_vocab_metadata(vocab, writer);
    hp->n_vocab = static_cast<int64_t>(vocab.tokens.size());
  }
  ThreadPool pool(resolve_threads(o.threads));
  model::RandomModelOptions options;
  options.weight_type = *type;
  options.seed = o.seed;
  options.output_scale = o.output_scale;
  options.router_skew = o.router_skew;
  options.router_topics = o.router_topics;
  options.topic_strength = o.topic_strength;
  if (Status s = model::add_random_model(*hp, options, pool, writer); !s.ok()) return report_error(s.error().message);
  ProgressBar progress("writing " + o.output_path, !o.quiet);
  writer.set_progress([&](size_t done, size_t total) { progress.update(done, total); });
  if (Status s = writer.write(o.output_path); !s.ok()) return report_error(s.error().message);
  if (!o.quiet) {
    fmt::print(stderr, "wrote {}: {} {} layers, n_embd {}, {} experts (top-{}), vocab {}, {}\n", o.output_path,
               hp->arch, hp->n_layer, hp->n_embd, hp->moe.n_expert, hp->moe.n_expert_used, hp->n_vocab, o.type_name);
  }
  return 0;
}

}  // namespace

CommandRunner add_gen_command(CLI::App& app) {
  auto o = std::make_shared<GenOptions>();
  CLI::App* sub = app.add_subcommand("gen", "Write a model with random weights (tests, benchmarks)");
  sub->add_option("--arch", o->arch, "Architecture")->capture_default_str();
  sub->add_option("--preset", o->preset, "Shape: tiny, tiny-moe, small-moe, mixtral-shaped, olmoe-shaped (deepseek2: also tiny-moe-v3, small-moe-v3, deepseek-v2-lite)")
      ->capture_default_str();
  sub->add_option("--type", o->type_name, "Weight type (f32, f16, bf16, q8_0, q4_0, ...)")->capture_default_str();
  sub->add_option("--vocab", o->vocab_path, "Copy the tokenizer from this GGUF (default: built-in byte vocab)");
  sub->add_option("-o,--output", o->output_path, "Output GGUF file")->required();
  sub->add_option("--seed", o->seed, "Random seed")->capture_default_str();
  sub->add_option("-t,--threads", o->threads, "Threads (default: physical cores)");
  sub->add_option("--n-layer", o->n_layer, "Override: layers");
  sub->add_option("--n-embd", o->n_embd, "Override: embedding size");
  sub->add_option("--n-ff", o->n_ff, "Override: FFN size (per expert for MoE)");
  sub->add_option("--n-head", o->n_head, "Override: attention heads");
  sub->add_option("--n-head-kv", o->n_head_kv, "Override: KV heads");
  sub->add_option("--n-ctx-train", o->n_ctx_train, "Override: training context length");
  sub->add_option("--n-expert", o->n_expert, "Override: experts (0 = dense)");
  sub->add_option("--n-expert-used", o->n_expert_used, "Override: experts per token");
  sub->add_option("--output-scale", o->output_scale, "Std of the output projection times sqrt(n_embd)")
      ->capture_default_str();
  sub->add_option("--router-skew", o->router_skew,
                  "Skewed expert popularity: router row of the expert ranked r scaled by (1 + r)^-skew (0: uniform)")
      ->capture_default_str();
  sub->add_option("--router-topics", o->router_topics,
                  "Temporal locality: token ids in N contiguous topics, each favoured by its share of every layer's "
                  "experts (0: off)")
      ->capture_default_str();
  sub->add_option("--topic-strength", o->topic_strength, "Length of the topic component of token embeddings")
      ->capture_default_str();
  sub->add_option("--from", o->from_path,
                  "Copy this GGUF (weights and metadata) instead of drawing random weights; with --router-skew, its "
                  "f32 routers are skewed");
  sub->add_flag("-q,--quiet", o->quiet, "No progress output");
  return [o] { return run_gen(*o); };
}

}  // namespace moe::cli
