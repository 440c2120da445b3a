// `moe inspect -m FILE`: metadata, tensor table, total and active parameters, MoE layout.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <string>

#include "cli/commands.h"
#include "formats/gguf.h"
#include "model/model.h"

namespace moe::cli {

namespace {

struct InspectOptions {
  std::string model_path;
  bool show_tensors = true;
  bool show_metadata = true;
};

std::string value_summary(const formats::GgufValue& value) {
  using formats::GgufValueType;
  if (value.is_array()) {
    return fmt::format("array<{}>[{}]", formats::gguf_value_type_name(value.element_type), value.array_size());
  }
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          std::string shown = v.size() > 80 ? v.substr(0, 77) + "..." : v;
          std::replace(shown.begin(), shown.end(), '\n', ' ');
          return fmt::format("\"{}\"", shown);
        } else if constexpr (std::is_same_v<T, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_arithmetic_v<T>) {
          return fmt::format("{}", v);
        } else {
          return "?";
        }
      },
      value.data);
}

std::string human_count(int64_t n) {
  if (n >= 1000000000) return fmt::format("{:.2f}B", static_cast<double>(n) / 1e9);
  if (n >= 1000000) return fmt::format("{:.2f}M", static_cast<double>(n) / 1e6);
  if (n >= 1000) return fmt::format("{:.2f}K", static_cast<double>(n) / 1e3);
  return fmt::format("{}", n);
}

void print_metadata(const formats::GgufFile& file) {
  fmt::print("GGUF v{}, alignment {}, {} metadata keys, {} tensors\n", file.version(), file.alignment(),
             file.metadata().size(), file.tensors().size());
  for (const auto& [key, value] : file.metadata()) fmt::print("  {:<48} {}\n", key, value_summary(value));
}

void print_tensors(const formats::GgufFile& file) {
  fmt::print("\n{:<40} {:>8} {:>28} {:>12}\n", "tensor", "type", "shape", "bytes");
  for (const auto& t : file.tensors()) {
    fmt::print("{:<40} {:>8} {:>28} {:>12}\n", t.name, dtype_name(t.type), model::shape_to_string(t.shape), t.n_bytes);
  }
}

void print_model_summary(const model::Model& m) {
  const model::HParams& hp = m.hparams();
  const model::ParameterCounts counts = m.parameter_counts();
  fmt::print("\narchitecture: {}  layers {}  n_embd {}  heads {} (kv {})  head_dim {}  vocab {}\n", hp.arch, hp.n_layer,
             hp.n_embd, hp.n_head, hp.n_head_kv, hp.head_dim_k, hp.n_vocab);
  fmt::print("parameters: total {} ({})  active per token {} ({})  routed experts {}  embedding {}\n",
             counts.total, human_count(counts.total), counts.active, human_count(counts.active), counts.expert,
             counts.embedding);
  if (!hp.moe.is_moe()) {
    fmt::print("dense FFN: n_ff {}\n", hp.n_ff);
    return;
  }
  const char* gating = hp.moe.gating == model::GatingFunction::kSoftmax   ? "softmax"
                       : hp.moe.gating == model::GatingFunction::kSigmoid ? "sigmoid"
                                                                          : "softmax over the chosen";
  fmt::print("MoE: {} experts, top-{}, {} shared (n_ff {}{}), gating {}, {}, routed scale {}, first {} layers dense\n",
             hp.moe.n_expert, hp.moe.n_expert_used, hp.moe.n_expert_shared, hp.moe.n_ff_shared,
             hp.moe.shared_expert_gate ? ", sigmoid-gated" : "", gating,
             hp.moe.normalize_top_k ? "top-k renormalised" : "top-k not renormalised", hp.moe.routed_scale,
             hp.moe.n_leading_dense);
  if (hp.moe.n_group > 1 || hp.moe.selection_bias) {
    fmt::print("routing: {} groups, {} used per token{}\n", hp.moe.n_group, hp.moe.n_group_used,
               hp.moe.selection_bias ? ", selection bias (exp_probs_b)" : "");
  }
  fmt::print("{:>6} {:>10} {:>10} {:>10} {:>26}\n", "layer", "gate", "up", "down", "expert (n_embd x n_ff)");
  for (int l = 0; l < hp.n_layer; ++l) {
    const model::LayerWeights& w = m.weights().layers[static_cast<size_t>(l)];
    if (!hp.layer_is_moe(l)) {
      fmt::print("{:>6} dense n_ff {}\n", l, hp.n_ff);
      continue;
    }
    fmt::print("{:>6} {:>10} {:>10} {:>10} {:>26}\n", l, dtype_name(w[model::LayerSlot::kFfnGateExps].type),
               dtype_name(w[model::LayerSlot::kFfnUpExps].type), dtype_name(w[model::LayerSlot::kFfnDownExps].type),
               fmt::format("{} x {} x {}", hp.n_embd, hp.n_ff_expert, hp.moe.n_expert));
  }
}

int run_inspect(const InspectOptions& options) {
  auto file = formats::GgufFile::open(options.model_path);
  if (!file.ok()) return report_error(file.error().message);
  if (options.show_metadata) print_metadata(*file);
  if (options.show_tensors) print_tensors(*file);
  auto loaded = model::Model::from_gguf(std::move(file).value());
  if (!loaded.ok()) {
    // Metadata and tensors were still worth printing (a vocab-only file, an unknown arch).
    fmt::print("\nnot a runnable model: {}\n", loaded.error().message);
    return 0;
  }
  print_model_summary(**loaded);
  return 0;
}

}  // namespace

CommandRunner add_inspect_command(CLI::App& app) {
  auto options = std::make_shared<InspectOptions>();
  CLI::App* sub = app.add_subcommand("inspect", "Print a model's metadata, tensors and parameter counts");
  sub->add_option("-m,--model", options->model_path, "GGUF file")->required();
  sub->add_flag("!--no-tensors", options->show_tensors, "Omit the tensor table");
  sub->add_flag("!--no-metadata", options->show_metadata, "Omit the metadata listing");
  return [options] { return run_inspect(*options); };
}

}  // namespace moe::cli
