// Byte-level BPE training: merge order on a hand-checked corpus, the vocabulary size, round trips
// through the trained vocabulary, determinism of the written GGUF, and the errors of bad input.
#include "train/bpe_trainer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <unistd.h>

#include "tokenizer/tokenizer.h"

namespace moe::train {
namespace {

// A small mixed corpus: English prose, digits, punctuation, newlines and multi-byte UTF-8.
const std::vector<std::string>& corpus() {
  static const std::vector<std::string> kTexts = {
      "In the beginning God created the heaven and the earth.\n"
      "And the earth was without form, and void; and darkness was upon the face of the deep.\n",
      "The quick brown fox jumps over the lazy dog. The quick brown fox jumps again!\n\n"
      "  Indented line with   extra   spaces\tand a tab.\n",
      "Numbers: 12345 and 3.14159, dates like 2024-06-01, and 1,000,000 items.\n",
      "Unicode: naïve café, Größe, Ελληνικά, русский текст, 日本語のテキスト, 한국어, emoji 🙂🚀.\n",
      "Code: for (int i = 0; i < n; ++i) { sum += x[i]; } // don't, can't, we'll, I'm\n",
  };
  return kTexts;
}

BpeTrainOptions options_with(int32_t vocab_size, int64_t min_frequency = 1) {
  BpeTrainOptions o;
  o.vocab_size = vocab_size;
  o.min_frequency = min_frequency;
  return o;
}

Result<tokenizer::VocabData> train_on(const std::vector<std::string>& texts, BpeTrainOptions options) {
  MOE_ASSIGN_OR_RETURN(BpeTrainer trainer, BpeTrainer::create(std::move(options)));
  for (const std::string& text : texts) trainer.add_text(text);
  return trainer.train();
}

// Words "aaab", " aaab", " ab" (once each). Pairs: (a,a) 4, (a,b) 3, (Ġ,a) 2 -> "a a"; then
// (a,b) 3 -> "a b"; then (aa,ab) 2 -> "aa ab"; then (Ġ,aaab) and (Ġ,ab) 1 each, tie to the lower
// symbol ids: "ab" (257) was made before "aaab" (258), so "Ġ ab" comes first. Token ids are
// symbol ids + 1, after the one special token.
TEST(BpeTrainer, LearnsMergesInFrequencyOrder) {
  auto vocab = train_on({"aaab aaab ab"}, options_with(1000));
  ASSERT_TRUE(vocab.ok()) << vocab.error().message;
  const std::vector<std::string> expected = {"a a", "a b", "aa ab", "Ġ ab", "Ġ aaab"};
  EXPECT_EQ(vocab->merges, expected);
  ASSERT_EQ(vocab->tokens.size(), 1u + 256u + 5u);  // ran out of pairs before 1000
  EXPECT_EQ(vocab->tokens[0], "<|endoftext|>");
  EXPECT_EQ(vocab->tokens[1 + 'a'], "a");
  EXPECT_EQ(vocab->tokens[1 + ' '], "Ġ");
  EXPECT_EQ(vocab->tokens[257], "aa");
  EXPECT_EQ(vocab->tokens[261], "Ġaaab");
}

TEST(BpeTrainer, MinFrequencyStopsRarePairs) {
  auto vocab = train_on({"aaab aaab ab"}, options_with(1000, 2));
  ASSERT_TRUE(vocab.ok()) << vocab.error().message;
  const std::vector<std::string> expected = {"a a", "a b", "aa ab"};
  EXPECT_EQ(vocab->merges, expected);
}

// An odd run merges left to right ("aaa" -> "aa a"), so the next merge is "aa a", not "a aa".
TEST(BpeTrainer, OverlappingPairsMergeLeftToRight) {
  auto vocab = train_on({"aaa aaa"}, options_with(1 + 256 + 2));
  ASSERT_TRUE(vocab.ok()) << vocab.error().message;
  const std::vector<std::string> expected = {"a a", "aa a"};
  EXPECT_EQ(vocab->merges, expected);
}

TEST(BpeTrainer, HonoursTheVocabularySize) {
  for (int32_t size : {257, 300, 420}) {
    auto vocab = train_on(corpus(), options_with(size));
    ASSERT_TRUE(vocab.ok()) << vocab.error().message;
    EXPECT_EQ(vocab->tokens.size(), static_cast<size_t>(size));
    EXPECT_EQ(vocab->merges.size(), static_cast<size_t>(size - 257));
    EXPECT_EQ(vocab->token_types.size(), vocab->tokens.size());
  }
}

TEST(BpeTrainer, SpecialTokensAreControlAndNeverLearned) {
  BpeTrainOptions o = options_with(400);
  o.special_tokens = {"<|endoftext|>", "<|pad|>"};
  auto data = train_on({"one <|endoftext|>two<|pad|> three <|endoftext|><|endoftext|> one two three"}, o);
  ASSERT_TRUE(data.ok()) << data.error().message;
  EXPECT_EQ(data->tokens[1], "<|pad|>");
  EXPECT_EQ(data->token_types[0], static_cast<int32_t>(tokenizer::TokenType::kControl));
  EXPECT_EQ(data->bos_id, 0);
  EXPECT_EQ(data->eos_id, 0);
  for (const std::string& merge : data->merges) EXPECT_EQ(merge.find("endof"), std::string::npos) << merge;
  auto vocab = tokenizer::Vocab::create(*data);
  ASSERT_TRUE(vocab.ok()) << vocab.error().message;
  const std::vector<int32_t> ids = tokenizer::tokenize(*vocab, "two<|endoftext|>", false, true);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.back(), 0);
}

class RoundTrip : public ::testing::TestWithParam<std::string> {};

// Every training text comes back from detokenize(tokenize(text)), in fewer tokens than bytes.
TEST_P(RoundTrip, TrainingTextsSurviveAndShrink) {
  BpeTrainOptions o = options_with(600);
  o.pre = GetParam();
  auto data = train_on(corpus(), o);
  ASSERT_TRUE(data.ok()) << data.error().message;
  auto vocab = tokenizer::Vocab::create(*data);
  ASSERT_TRUE(vocab.ok()) << vocab.error().message;
  for (const std::string& text : corpus()) {
    const std::vector<int32_t> ids = tokenizer::tokenize(*vocab, text, false, false);
    EXPECT_EQ(tokenizer::detokenize(*vocab, ids, false), text);
    EXPECT_LT(ids.size() * 2, text.size()) << text;  // learned on this very text
  }
  const std::string unseen = "Zebra 9876 ☃ ünïcödé\r\n";
  EXPECT_EQ(tokenizer::detokenize(*vocab, tokenizer::tokenize(*vocab, unseen, false, false), false), unseen);
}

INSTANTIATE_TEST_SUITE_P(Pre, RoundTrip, ::testing::Values("gpt-2", "llama3"));

// Same input -> byte-identical file, which reads back to the same vocabulary.
TEST(BpeTrainer, WritesADeterministicGgufThatLoads) {
  auto first = train_on(corpus(), options_with(500));
  auto second = train_on(corpus(), options_with(500));
  ASSERT_TRUE(first.ok() && second.ok());
  const std::vector<uint8_t> bytes = tokenizer_gguf_writer(*first).serialize();
  EXPECT_EQ(bytes, tokenizer_gguf_writer(*second).serialize());
  auto file = formats::GgufFile::parse(bytes, "tok.gguf");
  ASSERT_TRUE(file.ok()) << file.error().message;
  auto read = tokenizer::read_vocab_data(*file);
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read->model, "gpt2");
  EXPECT_EQ(read->pre, "gpt-2");
  EXPECT_EQ(read->tokens, first->tokens);
  EXPECT_EQ(read->merges, first->merges);
  EXPECT_EQ(read->token_types, first->token_types);
  EXPECT_EQ(read->bos_id, 0);
  EXPECT_EQ(read->unk_id, tokenizer::kNoToken);
  EXPECT_TRUE(tokenizer::load_vocab(*file).ok());
}

TEST(BpeTrainer, RejectsBadOptions) {
  auto too_small = BpeTrainer::create(options_with(256));
  ASSERT_FALSE(too_small.ok());
  EXPECT_EQ(too_small.error().message, "vocab size 256 is below the minimum 257 (256 byte tokens + 1 special tokens)");

  BpeTrainOptions o = options_with(300);
  o.special_tokens = {};
  auto none = BpeTrainer::create(o);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message, "at least one special token is needed (it becomes BOS and EOS)");
  o.special_tokens = {"<s>", "<s>"};
  auto twice = BpeTrainer::create(o);
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().message, "special token '<s>' is given twice");
  o.special_tokens = {"!"};
  auto byte_text = BpeTrainer::create(o);
  ASSERT_FALSE(byte_text.ok());
  EXPECT_EQ(byte_text.error().message, "special token '!' is the text of byte token 0x21");

  o = options_with(300);
  o.pre = "no-such-pre";
  auto pre = BpeTrainer::create(o);
  ASSERT_FALSE(pre.ok());
  EXPECT_NE(pre.error().message.find("no-such-pre"), std::string::npos) << pre.error().message;
}

TEST(BpeTrainer, RejectsAnEmptyCorpus) {
  auto trainer = BpeTrainer::create(options_with(300));
  ASSERT_TRUE(trainer.ok());
  trainer->add_text("");
  trainer->add_text("<|endoftext|>");  // cut out, leaving nothing
  auto vocab = trainer->train();
  ASSERT_FALSE(vocab.ok());
  EXPECT_EQ(vocab.error().message, "the training corpus is empty: no text to learn merges from");
}

TEST(BpeTrainer, RejectsUnreadableFiles) {
  auto trainer = BpeTrainer::create(options_with(300));
  ASSERT_TRUE(trainer.ok());
  const std::string missing = "/nonexistent/moe-bpe-corpus.txt";
  const Status absent = trainer->add_file(missing);
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.error().message, "cannot open training text '" + missing + "': No such file or directory");
  const std::string dir = std::filesystem::temp_directory_path().string();
  const Status directory = trainer->add_file(dir);
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.error().message, "cannot read training text '" + dir + "': Is a directory");
}

}  // namespace
}  // namespace moe::train
