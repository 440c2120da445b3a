// `moe quantize`'s library: the llama-quantize mixture rules per tensor, round-trip error by
// type, requantizing, overrides, fallbacks, the written metadata, and re-load validation.
#include "model/quantize.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <map>

#include "kernels/kernels.h"
#include "model/model.h"
#include "model/quant_rules.h"
#include "test_models.h"

namespace moe::model {
namespace {

using testing::TempFile;
using testing::write_random_model;

struct Quantized {
  QuantizePlan plan;
  WrittenHashes hashes;
};

// Quantizes `in` to `out` and validates the result the way `moe quantize` does.
Result<Quantized> quantize_file(const std::string& in, const std::string& out, const QuantizeOptions& options,
                                int threads = 2) {
  MOE_ASSIGN_OR_RETURN(auto source, Model::load(in));
  Quantized q;
  MOE_ASSIGN_OR_RETURN(q.plan, plan_quantization(source->file(), source->hparams(), options));
  ThreadPool pool(threads);
  formats::GgufWriter writer;
  MOE_TRY(add_quantized_tensors(source->file(), q.plan, options, pool, writer, q.hashes));
  MOE_TRY(writer.write(out));
  MOE_TRY(validate_quantized_file(out, q.plan, &q.hashes, pool));
  return q;
}

QuantizeOptions options_for(const std::string& type) {
  QuantizeOptions options;
  auto ft = parse_quant_file_type(type);
  EXPECT_TRUE(ft.ok()) << type;
  if (ft.ok()) options.file_type = *ft;
  return options;
}

std::map<std::string, DType> types_of(const QuantizePlan& plan) {
  std::map<std::string, DType> types;
  for (const TensorPlan& p : plan.tensors) types[p.name] = p.target_type;
  return types;
}

Result<QuantizePlan> plan_for(const std::string& path, const QuantizeOptions& options) {
  MOE_ASSIGN_OR_RETURN(auto source, Model::load(path));
  return plan_quantization(source->file(), source->hparams(), options);
}

// small-moe: 4 layers, n_embd 256, 8 experts (Mixtral's count, which the rules single out).
class QuantizeSmallMoe : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    f32_ = new TempFile("quant-small-f32");
    ASSERT_TRUE(write_random_model(f32_->path, "small-moe", DType::kF32, 11).ok());
  }
  static void TearDownTestSuite() {
    delete f32_;
    f32_ = nullptr;
  }
  static TempFile* f32_;
};
TempFile* QuantizeSmallMoe::f32_ = nullptr;

TEST_F(QuantizeSmallMoe, Q4KMPicksLlamaCppTypesFor8Experts) {
  auto plan = plan_for(f32_->path, options_for("Q4_K_M"));
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  auto t = types_of(*plan);
  EXPECT_EQ(t["output.weight"], DType::kQ6_K);
  EXPECT_EQ(t["token_embd.weight"], DType::kQ4_K);
  EXPECT_EQ(t["output_norm.weight"], DType::kF32);
  for (int layer = 0; layer < 4; ++layer) {
    const std::string b = "blk." + std::to_string(layer) + ".";
    EXPECT_EQ(t[b + "attn_v.weight"], DType::kQ8_0) << layer;       // 8 experts: attention in Q8_0
    EXPECT_EQ(t[b + "attn_k.weight"], DType::kQ8_0) << layer;
    EXPECT_EQ(t[b + "attn_q.weight"], DType::kQ4_K) << layer;
    EXPECT_EQ(t[b + "attn_output.weight"], DType::kQ5_K) << layer;
    EXPECT_EQ(t[b + "ffn_gate_inp.weight"], DType::kF32) << layer;  // router untouched
    EXPECT_EQ(t[b + "attn_norm.weight"], DType::kF32) << layer;
    EXPECT_EQ(t[b + "ffn_gate_exps.weight"], DType::kQ4_K) << layer;
    EXPECT_EQ(t[b + "ffn_up_exps.weight"], DType::kQ4_K) << layer;
    // "More bits" layers of 4: 2 ((i - 0) % 3 == 2) and 3 (the last eighth).
    EXPECT_EQ(t[b + "ffn_down_exps.weight"], layer >= 2 ? DType::kQ6_K : DType::kQ4_K) << layer;
  }
  EXPECT_EQ(plan->n_fallback, 0);
}

TEST_F(QuantizeSmallMoe, MixturesWithoutTheEightExpertRule) {
  TempFile four("quant-small-4exp");
  ASSERT_TRUE(write_random_model(four.path, "small-moe", DType::kF32, 12, [](HParams& hp) { hp.moe.n_expert = 4; }).ok());
  auto q4km = plan_for(four.path, options_for("q4_k"));  // alias of Q4_K_M
  ASSERT_TRUE(q4km.ok()) << q4km.error().message;
  auto t = types_of(*q4km);
  for (int layer = 0; layer < 4; ++layer) {
    const std::string b = "blk." + std::to_string(layer) + ".";
    EXPECT_EQ(t[b + "attn_v.weight"], layer >= 2 ? DType::kQ6_K : DType::kQ4_K) << layer;
    EXPECT_EQ(t[b + "attn_k.weight"], DType::kQ4_K) << layer;
    EXPECT_EQ(t[b + "attn_output.weight"], DType::kQ4_K) << layer;
  }
  auto q3km = plan_for(four.path, options_for("Q3_K_M"));
  ASSERT_TRUE(q3km.ok());
  t = types_of(*q3km);
  EXPECT_EQ(t["blk.0.attn_v.weight"], DType::kQ5_K);  // the first two attn_v
  EXPECT_EQ(t["blk.1.attn_v.weight"], DType::kQ5_K);
  EXPECT_EQ(t["blk.2.attn_v.weight"], DType::kQ4_K);
  EXPECT_EQ(t["blk.0.ffn_down_exps.weight"], DType::kQ4_K);  // n_layer / 16 = 0 layers of Q5_K
  EXPECT_EQ(t["blk.0.attn_output.weight"], DType::kQ4_K);
  EXPECT_EQ(t["blk.0.attn_q.weight"], DType::kQ3_K);
  auto q2k = plan_for(four.path, options_for("Q2_K"));
  ASSERT_TRUE(q2k.ok());
  t = types_of(*q2k);
  EXPECT_EQ(t["blk.1.attn_v.weight"], DType::kQ3_K);  // GQA 2 < 4
  EXPECT_EQ(t["blk.1.ffn_down_exps.weight"], DType::kQ3_K);
  EXPECT_EQ(t["blk.1.attn_output.weight"], DType::kQ3_K);
  EXPECT_EQ(t["blk.1.ffn_up_exps.weight"], DType::kQ2_K);
  EXPECT_EQ(t["output.weight"], DType::kQ6_K);
  auto q4ks = plan_for(four.path, options_for("Q4_K_S"));
  ASSERT_TRUE(q4ks.ok());
  t = types_of(*q4ks);
  EXPECT_EQ(t["blk.3.attn_v.weight"], DType::kQ5_K);  // the first four attn_v
  EXPECT_EQ(t["blk.0.ffn_down_exps.weight"], DType::kQ4_K);  // n_layer / 8 = 0
  auto q8 = plan_for(four.path, options_for("q8_0"));
  ASSERT_TRUE(q8.ok());
  t = types_of(*q8);
  EXPECT_EQ(t["output.weight"], DType::kQ8_0);
  EXPECT_EQ(t["blk.2.attn_v.weight"], DType::kQ8_0);
  auto q40 = plan_for(four.path, options_for("q4_0"));
  ASSERT_TRUE(q40.ok());
  EXPECT_EQ(types_of(*q40)["output.weight"], DType::kQ6_K);  // output gets Q6_K in every non-Q8_0 mixture
  QuantizeOptions pure = options_for("q4_0");
  pure.pure = true;
  auto q40_pure = plan_for(four.path, pure);
  ASSERT_TRUE(q40_pure.ok());
  EXPECT_EQ(types_of(*q40_pure)["output.weight"], DType::kQ4_0);
}

TEST(QuantizeRoundTrip, ErrorWithinEachTypesBitBudget) {
  // Pure files so every weight has the named type; relative RMSE bounds ~1.3x what each type
  // gives on Gaussian weights (8 bits ~0.5%, 4 bits ~7-9%, 2 bits ~30%).
  TempFile f32("quant-rt-src");
  ASSERT_TRUE(write_random_model(f32.path, "small-moe", DType::kF32, 13, [](HParams& hp) {
                hp.moe.n_expert = 2;
                hp.moe.n_expert_used = 1;
                hp.n_layer = 2;
              }).ok());
  const std::vector<std::pair<std::string, double>> bounds = {
      {"q8_0", 0.007}, {"q6_k", 0.023}, {"q5_1", 0.048}, {"q5_0", 0.055}, {"q5_k", 0.046},
      {"q4_1", 0.10},  {"q4_0", 0.11},  {"q4_k", 0.092}, {"iq4_nl", 0.098}, {"iq4_xs", 0.099},
      {"q3_k", 0.19},  {"q2_k", 0.38},  {"mxfp4", 0.15}, {"f16", 3e-4},    {"bf16", 2.2e-3}};
  ThreadPool pool(2);
  for (const auto& [type, bound] : bounds) {
    SCOPED_TRACE(type);
    TempFile out("quant-rt");
    QuantizeOptions options = options_for(type);
    options.pure = true;
    auto q = quantize_file(f32.path, out.path, options);
    ASSERT_TRUE(q.ok()) << q.error().message;
    auto ref = formats::GgufFile::open(f32.path);
    auto got = formats::GgufFile::open(out.path);
    ASSERT_TRUE(ref.ok() && got.ok());
    auto errors = compare_tensors(*ref, *got, pool);
    ASSERT_TRUE(errors.ok()) << errors.error().message;
    int converted = 0;
    for (const TensorError& e : *errors) {
      if (e.reference_type == e.quantized_type) {
        EXPECT_EQ(e.rmse, 0.0) << e.name;  // copied tensors are exact
        continue;
      }
      ++converted;
      EXPECT_GT(e.rmse, 0.0) << e.name;
      EXPECT_LT(e.rmse / e.reference_rms, bound) << e.name;
    }
    EXPECT_GT(converted, 10);
  }
}

TEST_F(QuantizeSmallMoe, BytesAreTheQuantizerOutputWhateverTheThreadCount) {
  TempFile one("quant-t1"), three("quant-t3");
  auto a = quantize_file(f32_->path, one.path, options_for("Q4_K_M"), 1);
  auto b = quantize_file(f32_->path, three.path, options_for("Q4_K_M"), 3);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->hashes.hashes, b->hashes.hashes);
  // One tensor checked against the quantizer called directly on the source rows.
  auto src = formats::GgufFile::open(f32_->path);
  auto out = formats::GgufFile::open(one.path);
  ASSERT_TRUE(src.ok() && out.ok());
  const auto* in = src->find_tensor("blk.2.ffn_down_exps.weight");
  const auto* q = out->find_tensor("blk.2.ffn_down_exps.weight");
  ASSERT_TRUE(in && q);
  ASSERT_EQ(q->type, DType::kQ6_K);
  std::vector<uint8_t> expected(q->n_bytes);
  kernels::type_traits(DType::kQ6_K, kernels::Isa::kScalar)
      ->from_float(reinterpret_cast<const float*>(in->data), expected.data(), in->n_elements());
  EXPECT_EQ(0, std::memcmp(expected.data(), q->data, expected.size()));
}

TEST_F(QuantizeSmallMoe, WritesLlamaQuantizeMetadataAndOrder) {
  TempFile out("quant-meta");
  ASSERT_TRUE(quantize_file(f32_->path, out.path, options_for("Q5_K_M")).ok());
  auto f = formats::GgufFile::open(out.path);
  ASSERT_TRUE(f.ok());
  const auto& kvs = f->metadata();
  ASSERT_GE(kvs.size(), 2u);
  EXPECT_EQ(kvs[kvs.size() - 2].first, "general.quantization_version");
  EXPECT_EQ(kvs.back().first, "general.file_type");
  EXPECT_EQ(*f->get_u32("general.file_type"), 17u);  // LLAMA_FTYPE_MOSTLY_Q5_K_M
  EXPECT_EQ(*f->get_u32("general.quantization_version"), 2u);
  // Tensors outside layers first, then by layer, by name within a layer.
  const auto& t = f->tensors();
  EXPECT_EQ(t.front().name, "output.weight");
  int64_t last_layer = -1;
  for (size_t i = 1; i < t.size(); ++i) {
    const int64_t layer = quant_rules::layer_of(t[i].name);
    EXPECT_GE(layer, last_layer) << t[i].name;
    if (layer == quant_rules::layer_of(t[i - 1].name)) {
      EXPECT_LT(t[i - 1].name, t[i].name);
    }
    last_layer = layer;
  }
}

TEST_F(QuantizeSmallMoe, OverridesWinAndFirstMatchCounts) {
  QuantizeOptions options = options_for("Q4_K_M");
  auto a = parse_type_override("ffn_.*_exps=q5_0");
  auto b = parse_type_override("ffn_down=q8_0");  // also matches ffn_down_exps, but comes second
  auto c = parse_type_override("^output\\.weight$=Q4_K");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  options.overrides = {*a, *b, *c};
  auto plan = plan_for(f32_->path, options);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  auto t = types_of(*plan);
  EXPECT_EQ(t["blk.3.ffn_down_exps.weight"], DType::kQ5_0);
  EXPECT_EQ(t["blk.3.ffn_gate_exps.weight"], DType::kQ5_0);
  EXPECT_EQ(t["output.weight"], DType::kQ4_K);
  EXPECT_EQ(t["blk.3.attn_v.weight"], DType::kQ8_0);  // untouched rules
  EXPECT_EQ(t["blk.3.ffn_gate_inp.weight"], DType::kF32);  // routers are never quantized
}

TEST(QuantizeRules, FallbackWhenRowsAreNotWholeBlocks) {
  using quant_rules::fallback_type;
  EXPECT_EQ(fallback_type(DType::kQ4_K, 512), DType::kQ4_K);
  EXPECT_EQ(fallback_type(DType::kQ4_K, 96), DType::kQ5_0);
  EXPECT_EQ(fallback_type(DType::kQ5_K, 96), DType::kQ5_1);
  EXPECT_EQ(fallback_type(DType::kQ6_K, 96), DType::kQ8_0);
  EXPECT_EQ(fallback_type(DType::kQ2_K, 96), DType::kQ4_0);
  EXPECT_EQ(fallback_type(DType::kQ3_K, 96), DType::kQ4_0);
  EXPECT_EQ(fallback_type(DType::kIQ4_XS, 96), DType::kIQ4_NL);
  EXPECT_EQ(fallback_type(DType::kQ4_K, 100), DType::kF16);  // not even 32-element blocks
  EXPECT_EQ(fallback_type(DType::kQ8_0, 100), DType::kF16);
}

TEST(QuantizeRules, FallbackInAWholeModel) {
  // tiny-moe: n_embd 64, n_ff 96, neither a multiple of 256.
  TempFile f32("quant-tiny");
  ASSERT_TRUE(write_random_model(f32.path, "tiny-moe", DType::kF32, 5).ok());
  TempFile out("quant-tiny-out");
  auto q = quantize_file(f32.path, out.path, options_for("Q4_K_M"));
  ASSERT_TRUE(q.ok()) << q.error().message;
  auto t = types_of(q->plan);
  EXPECT_EQ(t["output.weight"], DType::kQ8_0);  // output rule: rows not whole Q4_K blocks -> Q8_0
  EXPECT_EQ(t["blk.0.attn_q.weight"], DType::kQ5_0);
  EXPECT_EQ(t["blk.1.ffn_down_exps.weight"], DType::kQ8_0);  // Q6_K wanted (last layer)
  EXPECT_EQ(t["blk.0.ffn_down_exps.weight"], DType::kQ5_0);
  EXPECT_GT(q->plan.n_fallback, 0);
  for (const TensorPlan& p : q->plan.tensors) {
    if (p.fell_back) {
      EXPECT_NE(p.note.find("not whole"), std::string::npos) << p.name;
    }
  }
}

TEST(QuantizeRequantize, NeedsTheFlagAndThenWorks) {
  TempFile q8("quant-q8-src");
  ASSERT_TRUE(write_random_model(q8.path, "small-moe", DType::kQ8_0, 21).ok());
  TempFile out("quant-requant");
  auto refused = quantize_file(q8.path, out.path, options_for("Q4_K_M"));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("--allow-requantize"), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("q8_0"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(out.path));

  QuantizeOptions options = options_for("Q4_K_M");
  options.allow_requantize = true;
  auto q = quantize_file(q8.path, out.path, options);
  ASSERT_TRUE(q.ok()) << q.error().message;
  ThreadPool pool(2);
  auto ref = formats::GgufFile::open(q8.path);
  auto got = formats::GgufFile::open(out.path);
  ASSERT_TRUE(ref.ok() && got.ok());
  auto errors = compare_tensors(*ref, *got, pool);
  ASSERT_TRUE(errors.ok());
  for (const TensorError& e : *errors) {
    if (e.quantized_type == DType::kQ8_0) {
      EXPECT_EQ(e.rmse, 0.0) << e.name;  // same type: copied, not requantized
    } else if (e.reference_type != e.quantized_type) {
      EXPECT_LT(e.rmse / e.reference_rms, 0.10) << e.name;
    }
  }
  // Same type everywhere: nothing to requantize, so no flag needed.
  TempFile same("quant-same");
  EXPECT_TRUE(quantize_file(q8.path, same.path, options_for("q8_0")).ok());
}

TEST(QuantizeInput, BadNamesAndRules) {
  EXPECT_FALSE(parse_quant_file_type("q9_0").ok());
  EXPECT_NE(parse_quant_file_type("q9_0").error().message.find("Q4_K_M"), std::string::npos);
  EXPECT_FALSE(parse_quant_file_type("").ok());
  EXPECT_FALSE(parse_quant_file_type("q8_k").ok());  // an activation type, never a file type
  EXPECT_TRUE(parse_quant_file_type("iq4_xs").ok());
  EXPECT_EQ(parse_quant_file_type("Q4_K")->llama_ftype, 15u);
  EXPECT_FALSE(parse_type_override("ffn_down").ok());          // no '='
  EXPECT_FALSE(parse_type_override("=q4_0").ok());             // empty regex
  EXPECT_FALSE(parse_type_override("ffn_down=").ok());         // empty type
  EXPECT_FALSE(parse_type_override("ffn_down=q9_0").ok());     // unknown type
  EXPECT_FALSE(parse_type_override("ffn_down=q8_K").ok());     // not a weight type
  auto bad_regex = parse_type_override("ffn_(down=q4_0");
  ASSERT_FALSE(bad_regex.ok());
  EXPECT_NE(bad_regex.error().message.find("bad regex"), std::string::npos) << bad_regex.error().message;
  auto eq_in_regex = parse_type_override("a=b=q4_0");  // the last '=' splits
  ASSERT_TRUE(eq_in_regex.ok());
  EXPECT_EQ(eq_in_regex->pattern, "a=b");
}

TEST(QuantizeValidation, CatchesCorruptedOutput) {
  TempFile f32("quant-val-src");
  ASSERT_TRUE(write_random_model(f32.path, "tiny-moe", DType::kF32, 8).ok());
  TempFile out("quant-val");
  auto q = quantize_file(f32.path, out.path, options_for("q8_0"));
  ASSERT_TRUE(q.ok()) << q.error().message;
  ThreadPool pool(2);
  ASSERT_TRUE(validate_quantized_file(out.path, q->plan, &q->hashes, pool).ok());

  // One flipped bit in the last tensor's data.
  const auto size = std::filesystem::file_size(out.path);
  {
    auto f = formats::GgufFile::open(out.path);
    ASSERT_TRUE(f.ok());
    const auto& last = f->tensors().back();
    const uint64_t at = f->data_offset() + last.offset + last.n_bytes / 2;
    std::fstream io(out.path, std::ios::in | std::ios::out | std::ios::binary);
    io.seekg(static_cast<std::streamoff>(at));
    char c = 0;
    io.read(&c, 1);
    c = static_cast<char>(c ^ 0x10);
    io.seekp(static_cast<std::streamoff>(at));
    io.write(&c, 1);
  }
  auto flipped = validate_quantized_file(out.path, q->plan, &q->hashes, pool);
  ASSERT_FALSE(flipped.ok());
  EXPECT_NE(flipped.error().message.find("different bytes"), std::string::npos) << flipped.error().message;

  // A plan that expected another type for a tensor (what a wrong type in the header looks like).
  QuantizePlan other = q->plan;
  for (TensorPlan& p : other.tensors) {
    if (p.name == "blk.0.attn_q.weight") p.target_type = DType::kQ4_0;
  }
  auto wrong_type = validate_quantized_file(out.path, other, nullptr, pool);
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_NE(wrong_type.error().message.find("blk.0.attn_q.weight"), std::string::npos);

  // Truncated file.
  std::filesystem::resize_file(out.path, size - 100);
  EXPECT_FALSE(validate_quantized_file(out.path, q->plan, &q->hashes, pool).ok());
}

TEST(QuantizeCompare, ShapeOrNameMismatchIsAnError) {
  TempFile a("quant-cmp-a"), b("quant-cmp-b");
  ASSERT_TRUE(write_random_model(a.path, "tiny-moe", DType::kF32, 1).ok());
  ASSERT_TRUE(write_random_model(b.path, "tiny", DType::kF32, 1).ok());
  auto fa = formats::GgufFile::open(a.path);
  auto fb = formats::GgufFile::open(b.path);
  ASSERT_TRUE(fa.ok() && fb.ok());
  ThreadPool pool(2);
  auto r = compare_tensors(*fa, *fb, pool);  // tiny's ffn_down is missing from tiny-moe
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("is not in"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace moe::model
