#include "model/quantize.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstring>
#include <memory>

#include "kernels/kernels.h"
#include "model/model.h"
#include "model/quant_rules.h"

namespace moe::model {

namespace {

using quant_rules::Category;
using quant_rules::FileTypeId;

struct FileTypeName {
  std::string_view name;
  FileTypeId id;
  DType default_type;
};

// llama-quantize's names, then the ggml type names that stand for a file type (as its aliases do).
constexpr std::array kFileTypes = {
    FileTypeName{"F32", FileTypeId::kF32, DType::kF32},
    FileTypeName{"F16", FileTypeId::kF16, DType::kF16},
    FileTypeName{"BF16", FileTypeId::kBF16, DType::kBF16},
    FileTypeName{"Q8_0", FileTypeId::kQ8_0, DType::kQ8_0},
    FileTypeName{"Q4_0", FileTypeId::kQ4_0, DType::kQ4_0},
    FileTypeName{"Q4_1", FileTypeId::kQ4_1, DType::kQ4_1},
    FileTypeName{"Q5_0", FileTypeId::kQ5_0, DType::kQ5_0},
    FileTypeName{"Q5_1", FileTypeId::kQ5_1, DType::kQ5_1},
    FileTypeName{"Q2_K", FileTypeId::kQ2_K, DType::kQ2_K},
    FileTypeName{"Q3_K_S", FileTypeId::kQ3_K_S, DType::kQ3_K},
    FileTypeName{"Q3_K_M", FileTypeId::kQ3_K_M, DType::kQ3_K},
    FileTypeName{"Q3_K_L", FileTypeId::kQ3_K_L, DType::kQ3_K},
    FileTypeName{"Q4_K_S", FileTypeId::kQ4_K_S, DType::kQ4_K},
    FileTypeName{"Q4_K_M", FileTypeId::kQ4_K_M, DType::kQ4_K},
    FileTypeName{"Q5_K_S", FileTypeId::kQ5_K_S, DType::kQ5_K},
    FileTypeName{"Q5_K_M", FileTypeId::kQ5_K_M, DType::kQ5_K},
    FileTypeName{"Q6_K", FileTypeId::kQ6_K, DType::kQ6_K},
    FileTypeName{"IQ4_NL", FileTypeId::kIQ4_NL, DType::kIQ4_NL},
    FileTypeName{"IQ4_XS", FileTypeId::kIQ4_XS, DType::kIQ4_XS},
    FileTypeName{"MXFP4_MOE", FileTypeId::kMXFP4_MOE, DType::kMXFP4},
    // Aliases: llama-quantize's Q3_K/Q4_K/Q5_K, and the ggml name of MXFP4.
    FileTypeName{"Q3_K", FileTypeId::kQ3_K_M, DType::kQ3_K},
    FileTypeName{"Q4_K", FileTypeId::kQ4_K_M, DType::kQ4_K},
    FileTypeName{"Q5_K", FileTypeId::kQ5_K_M, DType::kQ5_K},
    FileTypeName{"MXFP4", FileTypeId::kMXFP4_MOE, DType::kMXFP4},
};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

bool is_float_type(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

// A compiled PCRE2 pattern, searched anywhere in a subject (std::regex_search semantics).
class Pattern {
 public:
  static Result<std::shared_ptr<Pattern>> compile(const std::string& pattern) {
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), 0, &error_code,
                                     &error_offset, nullptr);
    if (code == nullptr) {
      std::array<PCRE2_UCHAR, 256> message{};
      pcre2_get_error_message(error_code, message.data(), message.size());
      return make_error("bad regex '{}' at offset {}: {}", pattern, error_offset,
                        reinterpret_cast<const char*>(message.data()));
    }
    return std::make_shared<Pattern>(code);
  }
  explicit Pattern(pcre2_code* code) : code_(code) {}
  ~Pattern() { pcre2_code_free(code_); }
  Pattern(const Pattern&) = delete;
  Pattern& operator=(const Pattern&) = delete;

  // Returns whether the pattern matches somewhere in `subject`; errors on a matching failure
  // (e.g. the backtracking limit), never silently "no match".
  Result<bool> search(std::string_view subject) const {
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match(
        pcre2_match_data_create_from_pattern(code_, nullptr), &pcre2_match_data_free);
    if (!match) return make_error("out of memory matching a regex");
    const int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), 0, 0,
                               match.get(), nullptr);
    if (rc >= 0) return true;
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    std::array<PCRE2_UCHAR, 256> message{};
    pcre2_get_error_message(rc, message.data(), message.size());
    return make_error("regex failed on '{}': {}", subject, reinterpret_cast<const char*>(message.data()));
  }

 private:
  pcre2_code* code_;
};

int64_t element_count(std::span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// llama-quantize's output order: tensors outside layers first, then layer by layer; by name within.
std::vector<const formats::GgufTensorInfo*> output_order(const formats::GgufFile& source) {
  std::vector<const formats::GgufTensorInfo*> order;
  for (const auto& t : source.tensors()) order.push_back(&t);
  std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    const int64_t la = quant_rules::layer_of(a->name);
    const int64_t lb = quant_rules::layer_of(b->name);
    if (la != lb) return la < lb;
    return a->name < b->name;
  });
  return order;
}

quant_rules::MixtureState mixture_state(const formats::GgufFile& source, const HParams& hp,
                                        const QuantizeOptions& options) {
  quant_rules::MixtureState s;
  s.ftype = static_cast<FileTypeId>(options.file_type.llama_ftype);
  s.default_type = options.file_type.default_type;
  s.n_layer = hp.n_layer;
  s.n_expert = hp.moe.n_expert;
  s.n_gqa = hp.n_head_kv > 0 ? hp.n_head / hp.n_head_kv : 0;
  s.is_llama_70b = hp.arch == "llama" && hp.n_layer == 80 && hp.n_head != hp.n_head_kv;
  s.tied_embeddings = source.find_tensor("output.weight") == nullptr;
  for (const auto& t : source.tensors()) {
    if (quant_rules::tensor_category(t.name) == Category::kAttnV) ++s.n_attn_v;
  }
  return s;
}

// Returns the type a quantizable tensor gets: the first matching override, else the mixture's
// rule (unless pure or the file type is a float one), then the block-size fallback.
Result<DType> choose_type(const formats::GgufTensorInfo& t, const QuantizeOptions& options,
                          const std::vector<std::shared_ptr<Pattern>>& patterns, quant_rules::MixtureState& state,
                          TensorPlan& p) {
  std::string& note = p.note;
  DType type = options.file_type.default_type;
  bool manual = false;
  for (size_t i = 0; i < patterns.size(); ++i) {
    MOE_ASSIGN_OR_RETURN(bool hit, patterns[i]->search(t.name));
    if (hit) {
      type = options.overrides[i].type;
      note = fmt::format("--type-for '{}={}'", options.overrides[i].pattern, dtype_name(type));
      manual = true;
      break;
    }
  }
  if (!manual && !options.pure && !is_float_type(type)) {
    MOE_ASSIGN_OR_RETURN(type, quant_rules::mixture_type(state, t.name, quant_rules::tensor_category(t.name), t.shape));
  }
  const DType fitted = quant_rules::fallback_type(type, t.shape[0]);
  if (fitted != type) {
    p.fell_back = true;
    note = fmt::format("rows of {} are not whole {} blocks: {} instead", t.shape[0], dtype_name(type),
                       dtype_name(fitted));
  }
  return fitted;
}

Status check_convertible(const TensorPlan& p, const QuantizeOptions& options) {
  const kernels::TypeTraits* from = kernels::type_traits(p.source_type, kernels::Isa::kScalar);
  const kernels::TypeTraits* to = kernels::type_traits(p.target_type, kernels::Isa::kScalar);
  if (from == nullptr || from->to_float == nullptr) {
    return make_error("tensor '{}': cannot convert from {} (no dequantizer)", p.name, dtype_name(p.source_type));
  }
  if (to == nullptr || to->from_float == nullptr) {
    return make_error("tensor '{}': cannot write {} (no quantizer)", p.name, dtype_name(p.target_type));
  }
  if (!is_float_type(p.source_type) && !options.allow_requantize) {
    return make_error("tensor '{}' is already {}: requantizing to {} loses quality; pass --allow-requantize to do "
                      "it anyway", p.name, dtype_name(p.source_type), dtype_name(p.target_type));
  }
  return ok_status();
}

std::string set_names() {
  std::string names;
  for (const auto& f : kFileTypes) names += (names.empty() ? "" : ", ") + std::string(f.name);
  return names;
}

}  // namespace

std::string quant_file_type_names() { return set_names() + " (or the lower-case ggml names: q8_0, q4_k, ...)"; }

Result<QuantFileType> parse_quant_file_type(std::string_view name) {
  for (const auto& f : kFileTypes) {
    if (iequals(f.name, name)) return QuantFileType{f.name, static_cast<uint32_t>(f.id), f.default_type};
  }
  return make_error("unknown quantization type '{}'; known: {}", name, quant_file_type_names());
}

Result<TypeOverride> parse_type_override(std::string_view text) {
  const size_t eq = text.rfind('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == text.size()) {
    return make_error("bad --type-for '{}': expected REGEX=TYPE, e.g. 'ffn_.*_exps=q4_K'", text);
  }
  const std::string_view type_name = text.substr(eq + 1);
  const std::optional<DType> type = dtype_from_name(type_name);
  const kernels::TypeTraits* traits = type ? kernels::type_traits(*type, kernels::Isa::kScalar) : nullptr;
  if (!type || traits == nullptr || traits->from_float == nullptr || traits->vec_dot == nullptr) {
    return make_error("bad --type-for '{}': '{}' is not a weight type moe.cpp can write (f32, f16, bf16, q8_0, q4_0, "
                      "q4_1, q5_0, q5_1, q2_K, q3_K, q4_K, q5_K, q6_K, iq4_nl, iq4_xs, mxfp4)", text, type_name);
  }
  TypeOverride o{std::string(text.substr(0, eq)), *type};
  MOE_TRY(Pattern::compile(o.pattern));
  return o;
}

Result<QuantizePlan> plan_quantization(const formats::GgufFile& source, const HParams& hp,
                                       const QuantizeOptions& options) {
  std::vector<std::shared_ptr<Pattern>> patterns;
  for (const TypeOverride& o : options.overrides) {
    MOE_ASSIGN_OR_RETURN(auto p, Pattern::compile(o.pattern));
    patterns.push_back(std::move(p));
  }
  quant_rules::MixtureState state = mixture_state(source, hp, options);
  QuantizePlan plan;
  for (const formats::GgufTensorInfo* t : output_order(source)) {
    TensorPlan p;
    p.name = t->name;
    p.shape = t->shape;
    p.source_type = p.target_type = t->type;
    p.source_bytes = p.target_bytes = t->n_bytes;
    if (quant_rules::is_quantizable(t->name, t->shape, options.quantize_output)) {
      MOE_ASSIGN_OR_RETURN(p.target_type, choose_type(*t, options, patterns, state, p));
      if (p.fell_back) ++plan.n_fallback;
    }
    p.converted = p.target_type != p.source_type;
    if (p.converted) {
      MOE_TRY(check_convertible(p, options));
      MOE_ASSIGN_OR_RETURN(p.target_bytes, formats::tensor_n_bytes(p.name, p.target_type, p.shape));
    }
    plan.tensors.push_back(std::move(p));
  }
  return plan;
}

uint64_t hash_tensor_bytes(std::span<const uint8_t> bytes, ThreadPool& pool) {
  constexpr size_t kPiece = size_t{1} << 20;
  const auto n_pieces = static_cast<int64_t>((bytes.size() + kPiece - 1) / kPiece);
  std::vector<uint64_t> piece_hashes(static_cast<size_t>(n_pieces));
  pool.parallel_for(n_pieces, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const size_t from = static_cast<size_t>(i) * kPiece;
      const std::span<const uint8_t> piece = bytes.subspan(from, std::min(kPiece, bytes.size() - from));
      uint64_t h = 0xcbf29ce484222325ull ^ piece.size();
      size_t k = 0;
      for (; k + 8 <= piece.size(); k += 8) {
        uint64_t word = 0;
        std::memcpy(&word, piece.data() + k, 8);
        h = (h ^ word) * 0x100000001b3ull;
        h ^= h >> 29;
      }
      for (; k < piece.size(); ++k) h = (h ^ piece[k]) * 0x100000001b3ull;
      piece_hashes[static_cast<size_t>(i)] = h;
    }
  });
  uint64_t h = bytes.size();
  for (uint64_t piece : piece_hashes) h = (h ^ piece) * 0x9e3779b97f4a7c15ull + (h >> 31);
  return h;
}

Status add_quantized_tensors(const formats::GgufFile& source, const QuantizePlan& plan,
                             const QuantizeOptions& options, ThreadPool& pool, formats::GgufWriter& writer,
                             WrittenHashes& hashes) {
  // llama-quantize copies every key, then sets these two (moving them to the end).
  for (const auto& [key, value] : source.metadata()) {
    if (key != "general.quantization_version" && key != "general.file_type") writer.set(key, value);
  }
  writer.set("general.quantization_version", formats::GgufValue::u32(2));
  writer.set("general.file_type", formats::GgufValue::u32(options.file_type.llama_ftype));
  hashes.hashes.assign(plan.tensors.size(), 0);
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const TensorPlan& p = plan.tensors[i];
    const formats::GgufTensorInfo* in = source.find_tensor(p.name);
    if (in == nullptr) return make_error("tensor '{}' is not in '{}'", p.name, source.path());
    uint64_t* hash = &hashes.hashes[i];
    MOE_TRY(writer.add_tensor_lazy(p.name, p.target_type, p.shape, [&p, in, hash, &pool](std::span<uint8_t> out) {
      if (!p.converted) {
        std::memcpy(out.data(), in->data, out.size());
      } else {
        const kernels::TypeTraits& from = *kernels::type_traits(p.source_type, kernels::Isa::kScalar);
        const kernels::TypeTraits& to = *kernels::type_traits(p.target_type, kernels::Isa::kScalar);
        const int64_t n_cols = p.shape[0];
        const int64_t n_rows = element_count(p.shape) / n_cols;
        const size_t in_row = *dtype_row_bytes(p.source_type, n_cols);
        const size_t out_row = *dtype_row_bytes(p.target_type, n_cols);
        pool.parallel_for(n_rows, 4, [&](int64_t begin, int64_t end) {
          std::vector<float> row(static_cast<size_t>(n_cols));
          for (int64_t r = begin; r < end; ++r) {
            from.to_float(in->data + static_cast<size_t>(r) * in_row, row.data(), n_cols);
            to.from_float(row.data(), out.data() + static_cast<size_t>(r) * out_row, n_cols);
          }
        });
      }
      *hash = hash_tensor_bytes(out, pool);
      return ok_status();
    }));
  }
  return ok_status();
}

Status validate_quantized_file(const std::string& path, const QuantizePlan& plan, const WrittenHashes* hashes,
                               ThreadPool& pool) {
  MOE_ASSIGN_OR_RETURN(formats::GgufFile file, formats::GgufFile::open(path));
  auto loaded = Model::from_gguf(std::move(file));
  if (!loaded.ok()) return make_error("'{}' was written but does not load: {}", path, loaded.error().message);
  const formats::GgufFile& out = (*loaded)->file();
  if (out.tensors().size() != plan.tensors.size()) {
    return make_error("'{}' has {} tensors, expected {}", path, out.tensors().size(), plan.tensors.size());
  }
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const TensorPlan& p = plan.tensors[i];
    const formats::GgufTensorInfo* t = out.find_tensor(p.name);
    if (t == nullptr) return make_error("'{}': tensor '{}' is missing", path, p.name);
    if (t->type != p.target_type || t->shape != p.shape) {
      return make_error("'{}': tensor '{}' is {} {}, expected {} {}", path, p.name, dtype_name(t->type),
                        formats::tensor_shape_string(t->shape), dtype_name(p.target_type),
                        formats::tensor_shape_string(p.shape));
    }
    if (hashes != nullptr && hash_tensor_bytes({t->data, t->n_bytes}, pool) != hashes->hashes.at(i)) {
      return make_error("'{}': tensor '{}' reads back different bytes from those written", path, p.name);
    }
  }
  return ok_status();
}

Result<std::vector<TensorError>> compare_tensors(const formats::GgufFile& reference,
                                                 const formats::GgufFile& quantized, ThreadPool& pool) {
  std::vector<TensorError> errors;
  for (const formats::GgufTensorInfo& q : quantized.tensors()) {
    const formats::GgufTensorInfo* r = reference.find_tensor(q.name);
    if (r == nullptr) return make_error("tensor '{}' is not in '{}'", q.name, reference.path());
    if (r->shape != q.shape) {
      return make_error("tensor '{}' is {} in '{}' but {} in '{}'", q.name, formats::tensor_shape_string(r->shape),
                        reference.path(), formats::tensor_shape_string(q.shape), quantized.path());
    }
    const kernels::TypeTraits* rt = kernels::type_traits(r->type, kernels::Isa::kScalar);
    const kernels::TypeTraits* qt = kernels::type_traits(q.type, kernels::Isa::kScalar);
    if (rt == nullptr || rt->to_float == nullptr || qt == nullptr || qt->to_float == nullptr) {
      return make_error("tensor '{}': cannot dequantize {} or {}", q.name, dtype_name(r->type), dtype_name(q.type));
    }
    const int64_t n_cols = q.shape[0];
    const int64_t n_rows = element_count(q.shape) / n_cols;
    const size_t r_row = *dtype_row_bytes(r->type, n_cols);
    const size_t q_row = *dtype_row_bytes(q.type, n_cols);
    // Per-row sums, added in row order afterwards, so the figures do not depend on threads.
    std::vector<std::array<double, 3>> rows(static_cast<size_t>(n_rows));
    pool.parallel_for(n_rows, 16, [&](int64_t begin, int64_t end) {
      std::vector<float> a(static_cast<size_t>(n_cols));
      std::vector<float> b(static_cast<size_t>(n_cols));
      for (int64_t i = begin; i < end; ++i) {
        rt->to_float(r->data + static_cast<size_t>(i) * r_row, a.data(), n_cols);
        qt->to_float(q.data + static_cast<size_t>(i) * q_row, b.data(), n_cols);
        double diff2 = 0.0, ref2 = 0.0, max_abs = 0.0;
        for (size_t k = 0; k < a.size(); ++k) {
          const double d = static_cast<double>(b[k]) - static_cast<double>(a[k]);
          diff2 += d * d;
          ref2 += static_cast<double>(a[k]) * static_cast<double>(a[k]);
          max_abs = std::max(max_abs, std::fabs(d));
        }
        rows[static_cast<size_t>(i)] = {diff2, ref2, max_abs};
      }
    });
    TensorError e{q.name, r->type, q.type, 0.0, 0.0, 0.0};
    for (const auto& [diff2, ref2, max_abs] : rows) {
      e.rmse += diff2;
      e.reference_rms += ref2;
      e.max_abs_error = std::max(e.max_abs_error, max_abs);
    }
    const auto n = static_cast<double>(element_count(q.shape));
    e.rmse = std::sqrt(e.rmse / n);
    e.reference_rms = std::sqrt(e.reference_rms / n);
    errors.push_back(std::move(e));
  }
  return errors;
}

}  // namespace moe::model
