// `moe quantize IN OUT TYPE`: converts a model's weights with llama-quantize's per-tensor rules
// (model/quantize.h), writes atomically, then re-loads the output and checks it before
// reporting success. `moe quant-error SOURCE QUANTIZED`: per-tensor round-trip error of a
// quantized file against its source (either tool's output).
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/progress.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "model/model.h"
#include "model/quantize.h"

namespace moe::cli {

namespace {

struct QuantizeCliOptions {
  std::string input_path;
  std::string output_path;
  std::string type_name;
  std::vector<std::string> type_for;
  bool allow_requantize = false;
  bool pure = false;
  bool leave_output = false;
  bool rmse = false;
  bool dry_run = false;
  bool verbose = false;
  bool quiet = false;
  int threads = 0;
};

double mib(uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

void print_plan(const model::QuantizePlan& plan, bool every_tensor) {
  std::map<std::string, int> per_type;
  uint64_t before = 0, after = 0;
  for (const model::TensorPlan& p : plan.tensors) {
    ++per_type[std::string(dtype_name(p.target_type))];
    before += p.source_bytes;
    after += p.target_bytes;
    if (every_tensor || !p.note.empty()) {
      fmt::print(stderr, "  {:<36} {:<20} {:>6} -> {:<6}{}\n", p.name, formats::tensor_shape_string(p.shape),
                 dtype_name(p.source_type), dtype_name(p.target_type), p.note.empty() ? "" : "  (" + p.note + ")");
    }
  }
  std::string types;
  for (const auto& [name, count] : per_type) types += fmt::format("{}{} {}", types.empty() ? "" : ", ", name, count);
  fmt::print(stderr, "{} tensors ({}); {:.2f} MiB -> {:.2f} MiB", plan.tensors.size(), types, mib(before), mib(after));
  if (plan.n_fallback > 0) fmt::print(stderr, "; {} needed a fallback type", plan.n_fallback);
  fmt::print(stderr, "\n");
}

void print_errors(const std::vector<model::TensorError>& errors, bool only_changed) {
  fmt::print("{:<36} {:>6} {:>6} {:>12} {:>12} {:>10}\n", "tensor", "source", "type", "rmse", "rmse/rms", "max_abs");
  double sum2 = 0.0;
  double n = 0.0;
  for (const model::TensorError& e : errors) {
    if (only_changed && e.reference_type == e.quantized_type) continue;
    const double rel = e.reference_rms > 0.0 ? e.rmse / e.reference_rms : 0.0;
    fmt::print("{:<36} {:>6} {:>6} {:>12.6e} {:>12.6e} {:>10.4e}\n", e.name, dtype_name(e.reference_type),
               dtype_name(e.quantized_type), e.rmse, rel, e.max_abs_error);
    sum2 += rel * rel;
    n += 1.0;
  }
  if (n > 0) fmt::print("# {} tensors; mean relative rmse (quadratic) {:.6e}\n", n, std::sqrt(sum2 / n));
}

Result<std::vector<model::TensorError>> errors_between(const std::string& reference, const std::string& quantized,
                                                       ThreadPool& pool) {
  MOE_ASSIGN_OR_RETURN(formats::GgufFile ref, formats::GgufFile::open(reference));
  MOE_ASSIGN_OR_RETURN(formats::GgufFile quant, formats::GgufFile::open(quantized));
  return model::compare_tensors(ref, quant, pool);
}

Status same_file_check(const std::string& in, const std::string& out) {
  std::error_code ec;
  if (std::filesystem::exists(out, ec) && std::filesystem::equivalent(in, out, ec)) {
    return make_error("output '{}' is the input file; write to another path", out);
  }
  return ok_status();
}

Result<model::QuantizeOptions> make_options(const QuantizeCliOptions& o) {
  model::QuantizeOptions options;
  MOE_ASSIGN_OR_RETURN(options.file_type, model::parse_quant_file_type(o.type_name));
  for (const std::string& rule : o.type_for) {
    MOE_ASSIGN_OR_RETURN(model::TypeOverride override_rule, model::parse_type_override(rule));
    options.overrides.push_back(std::move(override_rule));
  }
  options.allow_requantize = o.allow_requantize;
  options.pure = o.pure;
  options.quantize_output = !o.leave_output;
  return options;
}

Status quantize(const QuantizeCliOptions& o) {
  MOE_ASSIGN_OR_RETURN(model::QuantizeOptions options, make_options(o));
  MOE_TRY(same_file_check(o.input_path, o.output_path));
  auto source = model::Model::load(o.input_path);
  if (!source.ok()) return make_error("cannot quantize '{}': {}", o.input_path, source.error().message);
  const formats::GgufFile& in = (*source)->file();
  MOE_ASSIGN_OR_RETURN(model::QuantizePlan plan, model::plan_quantization(in, (*source)->hparams(), options));
  if (!o.quiet) fmt::print(stderr, "{} -> {} as {}\n", o.input_path, o.output_path, options.file_type.name);
  if (!o.quiet || o.dry_run) print_plan(plan, o.verbose || o.dry_run);
  if (o.dry_run) return ok_status();

  ThreadPool pool(resolve_threads(o.threads));
  formats::GgufWriter writer;
  model::WrittenHashes hashes;
  MOE_TRY(model::add_quantized_tensors(in, plan, options, pool, writer, hashes));
  ProgressBar progress("quantizing", !o.quiet);
  writer.set_progress([&](size_t done, size_t total) { progress.update(done, total); });
  MOE_TRY(writer.write(o.output_path));
  if (Status s = model::validate_quantized_file(o.output_path, plan, &hashes, pool); !s.ok()) {
    return make_error("validation failed: {}", s.error().message);
  }
  if (!o.quiet) fmt::print(stderr, "wrote {}: re-loaded as a model, {} tensors checked\n", o.output_path, plan.tensors.size());
  if (o.rmse) {
    MOE_ASSIGN_OR_RETURN(auto errors, errors_between(o.input_path, o.output_path, pool));
    print_errors(errors, true);
  }
  return ok_status();
}

}  // namespace

CommandRunner add_quantize_command(CLI::App& app) {
  auto o = std::make_shared<QuantizeCliOptions>();
  CLI::App* sub = app.add_subcommand("quantize", "Convert a model's weights (llama-quantize's mixtures, e.g. Q4_K_M)");
  sub->add_option("input", o->input_path, "Source GGUF model (F32/F16/BF16, or quantized with --allow-requantize)")
      ->required();
  sub->add_option("output", o->output_path, "Output GGUF file (written atomically)")->required();
  sub->add_option("type", o->type_name, "Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K_S/M/L, Q4_K_S/M, Q5_K_S/M, Q6_K, "
                                        "IQ4_NL, IQ4_XS, MXFP4_MOE, F16, BF16, F32 (or q4_k = Q4_K_M, ...)")
      ->required();
  sub->add_option("--type-for", o->type_for, "REGEX=TYPE: tensors matching REGEX get TYPE (first match wins; repeatable)")
      ->allow_extra_args(false);
  sub->add_flag("--allow-requantize", o->allow_requantize, "Accept quantized sources (dequantized, then requantized)");
  sub->add_flag("--pure", o->pure, "No mixture rules: every quantizable tensor gets TYPE's default type");
  sub->add_flag("--leave-output-tensor", o->leave_output, "Keep output.weight in its source type");
  sub->add_flag("--rmse", o->rmse, "After writing, print each converted tensor's RMSE against the source");
  sub->add_flag("--dry-run", o->dry_run, "Print the type chosen for every tensor; write nothing");
  sub->add_flag("-v,--verbose", o->verbose, "Print the type chosen for every tensor");
  sub->add_flag("-q,--quiet", o->quiet, "No progress output");
  sub->add_option("-t,--threads", o->threads, "Threads (default: physical cores)");
  return [o] {
    Status s = quantize(*o);
    return s.ok() ? 0 : report_error(s.error().message);
  };
}

CommandRunner add_quant_error_command(CLI::App& app) {
  struct Options {
    std::string reference, quantized;
    bool all = false;
    int threads = 0;
  };
  auto o = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand("quant-error", "Per-tensor RMSE of a quantized GGUF against its source");
  sub->add_option("source", o->reference, "Source GGUF (e.g. the F16 model)")->required();
  sub->add_option("quantized", o->quantized, "Quantized GGUF (same tensor names and shapes)")->required();
  sub->add_flag("--all", o->all, "Also list tensors whose type did not change");
  sub->add_option("-t,--threads", o->threads, "Threads (default: physical cores)");
  return [o] {
    ThreadPool pool(resolve_threads(o->threads));
    auto errors = errors_between(o->reference, o->quantized, pool);
    if (!errors.ok()) return report_error(errors.error().message);
    print_errors(*errors, !o->all);
    return 0;
  };
}

}  // namespace moe::cli
