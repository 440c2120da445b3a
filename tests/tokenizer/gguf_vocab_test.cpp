// Vocabularies read from GGUF: our own writer's output and hostile metadata. (The real llama.cpp
// vocabularies are in real_vocab_test.cpp.)
#include "tokenizer/gguf_vocab.h"

#include <gtest/gtest.h>

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
            "vocab.gguf: byte-level BPE vocabulary without 'tokenizer.ggml.merges'");
  EXPECT_EQ(load_error("tokenizer.ggml.model", GgufValue::string("t5")),
            "vocab.gguf: unsupported tokenizer model 't5' (supported: 'llama' SentencePiece BPE, "
            "'gpt2' byte-level BPE, 'bert' WordPiece)");
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

}  // namespace
}  // namespace moe::tokenizer
