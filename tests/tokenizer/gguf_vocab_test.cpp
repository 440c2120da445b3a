// Vocabularies read from GGUF: our own writer's output, hostile metadata, and the real llama.cpp
// vocabularies in ../shared/testdata with their reference tokenizations.
#include "tokenizer/gguf_vocab.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "formats/gguf.h"
#include "tokenizer/tokenizer.h"

namespace moe::tokenizer {
namespace {

using formats::GgufFile;
using formats::GgufValue;
using formats::GgufWriter;

// Serializes `writer` and parses the image back; the image is kept alive in `storage`.
Result<GgufFile> round_trip(const GgufWriter& writer, std::vector<uint8_t>& storage) {
  storage = writer.serialize();
  return GgufFile::parse(storage, "vocab.gguf");
}

TEST(GgufVocab, WriterOutputLoadsBack) {
  const VocabData data = builtin_byte_vocab();
  GgufWriter writer;
  write_vocab_metadata(data, writer);
  std::vector<uint8_t> storage;
  auto file = round_trip(writer, storage);
  ASSERT_TRUE(file.ok()) << file.error().message;
  auto read = read_vocab_data(*file);
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read->tokens, data.tokens);
  EXPECT_EQ(read->scores, data.scores);
  EXPECT_EQ(read->token_types, data.token_types);
  EXPECT_EQ(read->bos_id, 1);
  EXPECT_EQ(read->eos_id, 2);
  EXPECT_EQ(read->unk_id, 0);
  EXPECT_TRUE(read->add_bos);
  EXPECT_FALSE(read->add_eos);
  EXPECT_TRUE(read->add_space_prefix);
  auto vocab = load_vocab(*file);
  ASSERT_TRUE(vocab.ok()) << vocab.error().message;
  EXPECT_EQ(vocab->size(), static_cast<int32_t>(data.tokens.size()));
}

// Writes the builtin vocabulary with one key replaced and returns load_vocab's error.
std::string load_error(const std::string& key, GgufValue value) {
  GgufWriter writer;
  write_vocab_metadata(builtin_byte_vocab(), writer);
  writer.set(key, std::move(value));
  std::vector<uint8_t> storage;
  auto file = round_trip(writer, storage);
  if (!file.ok()) return "parse failed: " + file.error().message;
  auto vocab = load_vocab(*file);
  return vocab.ok() ? std::string("(loaded)") : vocab.error().message;
}

TEST(GgufVocab, HostileMetadataGivesClearErrors) {
  EXPECT_EQ(load_error("tokenizer.ggml.model", GgufValue::string("gpt2")),
            "vocab.gguf: unsupported tokenizer model 'gpt2' (byte-level BPE is not implemented "
            "yet)");
  EXPECT_EQ(load_error("tokenizer.ggml.scores", GgufValue::f32_array({0.0f, 1.0f})),
            "vocab.gguf: 'tokenizer.ggml.scores' has 2 entries but 'tokenizer.ggml.tokens' has " +
                std::to_string(builtin_byte_vocab().tokens.size()));
  EXPECT_EQ(load_error("tokenizer.ggml.token_type", GgufValue::i32_array({1})),
            "vocab.gguf: 'tokenizer.ggml.token_type' has 1 entries but 'tokenizer.ggml.tokens' "
            "has " +
                std::to_string(builtin_byte_vocab().tokens.size()));
  EXPECT_NE(load_error("tokenizer.ggml.tokens", GgufValue::u32(3)).find("tokenizer.ggml.tokens"),
            std::string::npos);
  EXPECT_NE(load_error("tokenizer.ggml.add_bos_token", GgufValue::string("yes"))
                .find("tokenizer.ggml.add_bos_token"),
            std::string::npos);

  GgufWriter no_model;
  std::vector<uint8_t> storage;
  auto file = round_trip(no_model, storage);
  ASSERT_TRUE(file.ok());
  auto vocab = load_vocab(*file);
  ASSERT_FALSE(vocab.ok());
  EXPECT_NE(vocab.error().message.find("tokenizer.ggml.model"), std::string::npos);
}

// --- Real vocabularies --------------------------------------------------------------------

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// .inp: cases each followed by "\n__ggml_vocab_test__\n"; .out: one line of " <id>" per case.
std::vector<Case> read_cases(const std::string& vocab_path) {
  const std::string inp = read_all(vocab_path + ".inp");
  const std::string out = read_all(vocab_path + ".out");
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<Case> cases;
  for (size_t pos = 0; pos < inp.size();) {
    const size_t end = inp.find(separator, pos);
    if (end == std::string::npos) break;
    cases.push_back({inp.substr(pos, end - pos), {}});
    pos = end + separator.size();
  }
  std::istringstream lines(out);
  std::string line;
  for (Case& c : cases) {
    if (!std::getline(lines, line)) break;
    std::istringstream ids(line);
    int32_t id = 0;
    while (ids >> id) c.ids.push_back(id);
  }
  return cases;
}

void check_real_vocab(const std::string& name) {
  const std::filesystem::path dir = MOE_TESTDATA_DIR;
  const std::string path = (dir / "vocab" / ("ggml-vocab-" + name + ".gguf")).string();
  if (!std::filesystem::exists(path)) {
    GTEST_SKIP() << "shared test data not found at " << path << " (MOE_TESTDATA_DIR)";
  }
  auto file = GgufFile::open(path);
  ASSERT_TRUE(file.ok()) << file.error().message;
  auto vocab = load_vocab(*file);
  ASSERT_TRUE(vocab.ok()) << vocab.error().message;
  const std::vector<Case> cases = read_cases(path);
  ASSERT_EQ(cases.size(), 46u);
  for (const Case& c : cases) {
    const auto ids = tokenize(*vocab, c.text, false, false);
    EXPECT_EQ(ids, c.ids) << "text: '" << c.text << "'";
    // SPM keeps every byte, so decoding gives the input back.
    EXPECT_EQ(detokenize(*vocab, ids, true), c.text);
  }
}

TEST(RealVocab, LlamaSpm) { check_real_vocab("llama-spm"); }
TEST(RealVocab, Phi3) { check_real_vocab("phi-3"); }

}  // namespace
}  // namespace moe::tokenizer
