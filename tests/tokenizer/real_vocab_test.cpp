// Every real llama.cpp vocabulary in ../shared/testdata/vocab that has
// reference cases
// (.inp/.out, made by Hugging Face tokenizers or tiktoken): identical ids for
// every case, and decoding gives the input back wherever the tokenizer is
// lossless. One test per vocabulary.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "formats/gguf.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/tokenizer.h"

namespace moe::tokenizer {
namespace {

namespace fs = std::filesystem;

// Vocabularies with reference cases. A test below checks the list matches the
// directory.
const std::vector<std::string> kVocabsWithCases = {
    "llama-spm", "phi-3",        "gpt-2",          "starcoder",
    "mpt",       "deepseek-llm", "deepseek-coder", "qwen2",
    "llama-bpe", "gpt-4o",       "bert-bge",
};
// Vocabularies without cases: they must still load (or fail with a clear
// message).
const std::vector<std::string> kVocabsWithoutCases = {"baichuan", "gpt-neox"};

fs::path vocab_dir() { return fs::path(MOE_TESTDATA_DIR) / "vocab"; }
std::string vocab_path(const std::string &name) {
  return (vocab_dir() / ("ggml-vocab-" + name + ".gguf")).string();
}

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

std::string read_all(const fs::path &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// .inp: cases each followed by "\n__ggml_vocab_test__\n"; .out: one line of "
// <id>" per case.
std::vector<Case> read_cases(const std::string &path) {
  const std::string inp = read_all(path + ".inp");
  const std::string out = read_all(path + ".out");
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<Case> cases;
  for (size_t pos = 0; pos < inp.size();) {
    const size_t end = inp.find(separator, pos);
    if (end == std::string::npos)
      break;
    cases.push_back({inp.substr(pos, end - pos), {}});
    pos = end + separator.size();
  }
  std::istringstream lines(out);
  std::string line;
  size_t n_lines = 0;
  for (Case &c : cases) {
    if (!std::getline(lines, line))
      break;
    ++n_lines;
    std::istringstream ids(line);
    int32_t id = 0;
    while (ids >> id)
      c.ids.push_back(id);
  }
  EXPECT_EQ(n_lines, cases.size())
      << path << ": .inp and .out disagree on the case count";
  return cases;
}

// Decodes as a stream would (no clean-up of spaces), dropping SPM's leading
// space.
std::string stream_decode(const Vocab &vocab, const std::vector<int32_t> &ids) {
  Detokenizer detokenizer(vocab,
                          {.strip_leading_space = vocab.add_space_prefix()});
  std::string out;
  for (int32_t id : ids)
    out += detokenizer.push(id);
  return out + detokenizer.flush();
}

// WordPiece is lossy by design (lower-casing, accent stripping, whitespace
// collapsed, "##" joins), so only SPM and byte-level BPE must give every input
// back.
bool round_trips(const Vocab &vocab) { return vocab.kind() != VocabKind::kWpm; }

class RealVocab : public ::testing::TestWithParam<std::string> {};

TEST_P(RealVocab, IdsMatchReferenceAndDecodeBack) {
  const std::string path = vocab_path(GetParam());
  if (!fs::exists(path)) {
    GTEST_SKIP() << "shared test data not found at " << path
                 << " (MOE_TESTDATA_DIR)";
  }
  auto file = formats::GgufFile::open(path);
  ASSERT_TRUE(file.ok()) << file.error().message;
  auto vocab = load_vocab(*file);
  ASSERT_TRUE(vocab.ok()) << vocab.error().message;
  const std::vector<Case> cases = read_cases(path);
  ASSERT_GT(cases.size(), 0u);
  size_t mismatches = 0;
  for (const Case &c : cases) {
    const auto ids = tokenize(*vocab, c.text, false, false);
    if (ids != c.ids)
      ++mismatches;
    EXPECT_EQ(ids, c.ids) << "text: '" << c.text << "'";
    if (round_trips(*vocab)) {
      EXPECT_EQ(stream_decode(*vocab, ids), c.text);
    }
  }
  EXPECT_EQ(mismatches, 0u) << "of " << cases.size() << " cases";
}

INSTANTIATE_TEST_SUITE_P(Vocab, RealVocab,
                         ::testing::ValuesIn(kVocabsWithCases),
                         [](const auto &info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(RealVocabList, CoversEveryVocabularyWithCases) {
  if (!fs::exists(vocab_dir()))
    GTEST_SKIP() << "shared test data not found at " << vocab_dir();
  for (const auto &entry : fs::directory_iterator(vocab_dir())) {
    const std::string file = entry.path().filename().string();
    const std::string prefix = "ggml-vocab-", suffix = ".gguf.inp";
    if (file.rfind(prefix, 0) != 0 || !file.ends_with(suffix))
      continue;
    const std::string name =
        file.substr(prefix.size(), file.size() - prefix.size() - suffix.size());
    EXPECT_NE(std::find(kVocabsWithCases.begin(), kVocabsWithCases.end(), name),
              kVocabsWithCases.end())
        << name << " has reference cases but is not tested";
  }
}

TEST(RealVocabList, VocabulariesWithoutCasesLoad) {
  for (const std::string &name : kVocabsWithoutCases) {
    const std::string path = vocab_path(name);
    if (!fs::exists(path))
      GTEST_SKIP() << "shared test data not found at " << path;
    auto file = formats::GgufFile::open(path);
    ASSERT_TRUE(file.ok()) << file.error().message;
    auto vocab = load_vocab(*file);
    ASSERT_TRUE(vocab.ok()) << name << ": " << vocab.error().message;
    const std::string text = "Hello world, 123 \xf0\x9f\xa6\x99!";
    const auto ids = tokenize(*vocab, text, false, false);
    EXPECT_FALSE(ids.empty()) << name;
    EXPECT_EQ(stream_decode(*vocab, ids), text) << name;
  }
}

} // namespace
} // namespace moe::tokenizer
