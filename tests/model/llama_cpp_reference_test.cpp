// moe.cpp alone against token ids and logits recorded from llama.cpp (tests/data/
// llama_cpp_reference/*.txt say exactly how): one case per architecture, shape and (for the
// quantized llama files) weight type. The model
// is rewritten by our deterministic generator, so only the small recorded results are stored.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "../tile_switch.h"
#include "model/context.h"
#include "model/model.h"
#include "model/quantize.h"
#include "test_models.h"
#include "tokenizer/vocab.h"

namespace moe::model {
namespace {

namespace fs = std::filesystem;

struct Reference {
  std::map<std::string, std::string> fields;
  std::vector<float> logits;

  std::vector<int32_t> ids(const std::string& key) const {
    std::istringstream in(fields.at(key));
    std::vector<int32_t> out;
    for (int32_t id; in >> id;) out.push_back(id);
    return out;
  }
};

fs::path reference_dir() { return fs::path(MOE_SOURCE_DIR) / "tests" / "data" / "llama_cpp_reference"; }

Reference read_reference(const std::string& name) {
  Reference ref;
  std::ifstream in(reference_dir() / (name + ".txt"));
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.find(' ');
    ref.fields[line.substr(0, space)] = space == std::string::npos ? "" : line.substr(space + 1);
  }
  std::ifstream logits(reference_dir() / (name + ".logits.f32"), std::ios::binary);
  for (float x; logits.read(reinterpret_cast<char*>(&x), sizeof x);) ref.logits.push_back(x);
  return ref;
}

std::vector<std::string> reference_names() {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(reference_dir())) {
    if (entry.path().extension() == ".txt") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

int32_t argmax(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

class LlamaCppReference : public ::testing::TestWithParam<std::string> {};

// Runs the reference's prompt and greedy continuation with the given kernels and checks both
// against llama.cpp's; the prompt's last-position logits go to *prompt_logits.
void check_against_reference(const std::string& name, moe::testing::PrefillEngine engine,
                             std::vector<float>* prompt_logits) {
  const moe::testing::PrefillKernels kernels_for_check(engine);
  const Reference ref = read_reference(name);
  ASSERT_FALSE(ref.logits.empty()) << "missing logits for " << name;
  testing::TempFile file("llama-cpp-ref");
  // Weight type: f32 unless the reference names one (quantized models must match exactly too).
  const auto type_it = ref.fields.find("type");
  const auto type = dtype_from_name(type_it == ref.fields.end() ? "f32" : type_it->second);
  ASSERT_TRUE(type.has_value());
  ASSERT_TRUE(testing::write_random_model(file.path, ref.fields.at("preset"), *type,
                                          std::stoull(ref.fields.at("seed")), {}, ref.fields.at("arch"))
                  .ok());
  auto model = Model::load(file.path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto vocab = tokenizer::load_vocab((*model)->file());
  ASSERT_TRUE(vocab.ok());
  const std::vector<int32_t> prompt = tokenizer::tokenize(*vocab, ref.fields.at("prompt"), true, false);
  ASSERT_EQ(prompt, ref.ids("prompt_ids"));

  ThreadPool pool(2);
  auto ctx = InferenceContext::create(**model, ContextParams{}, pool);
  ASSERT_TRUE(ctx.ok());
  ASSERT_TRUE((*ctx)->eval(prompt).ok());
  const auto logits = (*ctx)->logits();
  ASSERT_EQ(logits.size(), ref.logits.size());
  float max_ref = 0.0f, max_diff = 0.0f;
  for (size_t i = 0; i < logits.size(); ++i) {
    max_ref = std::max(max_ref, std::fabs(ref.logits[i]));
    max_diff = std::max(max_diff, std::fabs(logits[i] - ref.logits[i]));
  }
  EXPECT_LE(max_diff, 1e-3f * max_ref) << "max |diff| " << max_diff << " vs max |logit| " << max_ref;
  prompt_logits->assign(logits.begin(), logits.end());

  const std::vector<int32_t> expected = ref.ids("generated_ids");
  std::vector<int32_t> generated;
  for (size_t i = 0; i < expected.size(); ++i) {
    const int32_t token = argmax((*ctx)->logits());
    generated.push_back(token);
    if (i + 1 < expected.size()) {
      ASSERT_TRUE((*ctx)->eval(std::span<const int32_t>(&token, 1)).ok());
    }
  }
  EXPECT_EQ(generated, expected);
}

// llama.cpp's bits need its kernels: the int8 activations, not the bf16 tile unit.
TEST_P(LlamaCppReference, SameGreedyTokensAndLogits) {
  std::vector<float> logits;
  check_against_reference(GetParam(), moe::testing::PrefillEngine::kDotKernels, &logits);
}

// The int8 tile unit keeps llama.cpp's activations and block sums: the same greedy tokens and
// logits within the same bound. (On these small models its other float order happens to leave
// the last-position logits bit-identical; expert_ffn_test checks that it runs and what it sums.)
TEST_P(LlamaCppReference, SameGreedyTokensAndLogitsOnInt8Tiles) {
  if (!kernels::int8_tiles::available()) GTEST_SKIP() << "no AMX-INT8 on this CPU";
  std::vector<float> logits;
  check_against_reference(GetParam(), moe::testing::PrefillEngine::kInt8Tiles, &logits);
}

// Last-position logits of `path` for `prompt` (2 threads, default context).
std::vector<float> prompt_logits(const std::string& path, const std::vector<int32_t>& prompt) {
  auto model = Model::load(path);
  EXPECT_TRUE(model.ok()) << model.error().message;
  if (!model.ok()) return {};
  ThreadPool pool(2);
  auto ctx = InferenceContext::create(**model, ContextParams{}, pool);
  EXPECT_TRUE(ctx.ok());
  EXPECT_TRUE((*ctx)->eval(prompt).ok());
  const auto logits = (*ctx)->logits();
  return {logits.begin(), logits.end()};
}

double rms_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += (static_cast<double>(a[i]) - b[i]) * (a[i] - b[i]);
  return std::sqrt(sum / static_cast<double>(a.size()));
}

// The tile unit rounds activations to bf16 where llama.cpp quantizes them to 8 bits, so its
// logits are not llama.cpp's; they must be at least as close to the exact product of the same
// (dequantized) weights. Truth: the quantized file dequantized to F32, run on the F32 kernels.
class TileAccuracy : public ::testing::TestWithParam<std::string> {};

TEST_P(TileAccuracy, AtLeastAsAccurateAsTheInt8Path) {
  if (!kernels::tiles::available()) GTEST_SKIP() << "no AMX-BF16 on this CPU";
  const Reference ref = read_reference(GetParam());
  const auto type_it = ref.fields.find("type");
  ASSERT_NE(type_it, ref.fields.end());
  ASSERT_TRUE(kernels::tiles::recommended(*dtype_from_name(type_it->second)));
  testing::TempFile quantized("tiles-quantized"), dequantized("tiles-f32");
  ASSERT_TRUE(testing::write_random_model(quantized.path, ref.fields.at("preset"), *dtype_from_name(type_it->second),
                                          std::stoull(ref.fields.at("seed")), {}, ref.fields.at("arch"))
                  .ok());
  {
    auto source = Model::load(quantized.path);
    ASSERT_TRUE(source.ok());
    QuantizeOptions options;
    options.file_type = *parse_quant_file_type("F32");
    options.allow_requantize = true;
    auto plan = plan_quantization((*source)->file(), (*source)->hparams(), options);
    ASSERT_TRUE(plan.ok()) << plan.error().message;
    ThreadPool pool(2);
    formats::GgufWriter writer;
    WrittenHashes hashes;
    ASSERT_TRUE(add_quantized_tensors((*source)->file(), *plan, options, pool, writer, hashes).ok());
    ASSERT_TRUE(writer.write(dequantized.path).ok());
  }
  const std::vector<int32_t> prompt = ref.ids("prompt_ids");
  std::vector<float> truth, int8, tiles;
  {
    const moe::testing::PrefillKernels off(moe::testing::PrefillEngine::kDotKernels);
    truth = prompt_logits(dequantized.path, prompt);
    int8 = prompt_logits(quantized.path, prompt);
  }
  {
    const moe::testing::PrefillKernels on(moe::testing::PrefillEngine::kBf16Tiles);
    tiles = prompt_logits(quantized.path, prompt);
  }
  ASSERT_EQ(tiles.size(), truth.size());
  const double int8_error = rms_difference(int8, truth);
  const double tile_error = rms_difference(tiles, truth);
  EXPECT_NE(tiles, int8) << "the prompt never reached the tile unit";
  EXPECT_LE(tile_error, int8_error) << "tiles rms " << tile_error << " vs int8 rms " << int8_error;
}

// The references of quantized files (those that name a weight type).
std::vector<std::string> quantized_reference_names() {
  std::vector<std::string> names;
  for (const std::string& name : reference_names()) {
    if (read_reference(name).fields.count("type") != 0) names.push_back(name);
  }
  return names;
}

INSTANTIATE_TEST_SUITE_P(Quantized, TileAccuracy, ::testing::ValuesIn(quantized_reference_names()),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

INSTANTIATE_TEST_SUITE_P(Archs, LlamaCppReference, ::testing::ValuesIn(reference_names()),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace moe::model
