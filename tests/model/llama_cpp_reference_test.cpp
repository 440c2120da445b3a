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

#include "model/context.h"
#include "model/model.h"
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

TEST_P(LlamaCppReference, SameGreedyTokensAndLogits) {
  const Reference ref = read_reference(GetParam());
  ASSERT_FALSE(ref.logits.empty()) << "missing logits for " << GetParam();
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

INSTANTIATE_TEST_SUITE_P(Archs, LlamaCppReference, ::testing::ValuesIn(reference_names()),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace moe::model
