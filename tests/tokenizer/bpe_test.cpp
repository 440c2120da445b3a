// Byte-level BPE and WordPiece on synthetic vocabularies, hostile vocabulary
// files, and random bytes (invalid UTF-8 included) through every family in
// ../shared/testdata.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "formats/gguf.h"
#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace moe::tokenizer {
namespace {

using formats::GgufFile;
using formats::GgufValue;
using formats::GgufWriter;

// A byte-level vocabulary: the 256 byte characters (id = byte), then the merged
// pieces, then
// "<|endoftext|>" as a control token.
VocabData byte_level_data(const std::vector<std::string> &merges) {
  VocabData data;
  data.model = "gpt2";
  data.pre = "gpt-2";
  for (int byte = 0; byte < 256; ++byte) {
    data.tokens.emplace_back(byte_to_unicode(static_cast<uint8_t>(byte)));
  }
  for (const std::string &merge : merges) {
    std::string joined = merge;
    joined.erase(joined.find(' ', 1), 1);
    data.tokens.push_back(joined);
  }
  data.tokens.push_back("<|endoftext|>");
  data.token_types.assign(data.tokens.size(), 1);
  data.token_types.back() = 3;
  data.merges = merges;
  data.bos_id = data.eos_id = static_cast<int32_t>(data.tokens.size()) - 1;
  data.unk_id = kNoToken;
  data.add_bos = false;
  data.add_space_prefix = false;
  return data;
}

Vocab make_vocab(VocabData data) {
  auto vocab = Vocab::create(std::move(data));
  EXPECT_TRUE(vocab.ok()) << vocab.error().message;
  return std::move(vocab).value();
}

std::vector<std::string> texts_of(const Vocab &vocab,
                                  const std::vector<int32_t> &ids) {
  std::vector<std::string> out;
  for (int32_t id : ids)
    out.push_back(vocab.token_text(id));
  return out;
}

TEST(ByteLevel, MappingIsGpt2sAndReversible) {
  EXPECT_EQ(byte_to_unicode('!'), "!");
  EXPECT_EQ(byte_to_unicode(' '), "\xc4\xa0");  // "Ġ" U+0120
  EXPECT_EQ(byte_to_unicode('\n'), "\xc4\x8a"); // "Ċ" U+010A
  EXPECT_EQ(byte_to_unicode(0xAD), "\xc5\x83"); // soft hyphen -> U+0143
  std::string all;
  for (int byte = 0; byte < 256; ++byte)
    all += byte_to_unicode(static_cast<uint8_t>(byte));
  std::string expected;
  for (int byte = 0; byte < 256; ++byte)
    expected += static_cast<char>(byte);
  EXPECT_EQ(decode_byte_level(all), expected);
  EXPECT_EQ(decode_byte_level("caf\xc3\xa9"),
            "caf\xe9"); // é is the byte-level char of 0xE9
  EXPECT_EQ(decode_byte_level("\xe4\xb8\x96"),
            "\xe4\xb8\x96"); // not in the map: copied
}

TEST(Bpe, MergesByRankNotByPosition) {
  // "b c" outranks "a b", so "abc" -> "a" "bc" although "ab" is further left.
  const Vocab vocab = make_vocab(byte_level_data({"b c", "a b", "Ġ a"}));
  EXPECT_EQ(texts_of(vocab, tokenize(vocab, "abc", false, false)),
            (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(texts_of(vocab, tokenize(vocab, "ab ab", false, false)),
            (std::vector<std::string>{"ab", "Ġ",
                                      "ab"})); // "a b" (1) before "Ġ a" (2)
  // Equal ranks (the same pair twice) merge leftmost first.
  const Vocab tie = make_vocab(byte_level_data({"a a"}));
  EXPECT_EQ(texts_of(tie, tokenize(tie, "aaa", false, false)),
            (std::vector<std::string>{"aa", "a"}));
}

TEST(Bpe, SpecialTokensOnlyWithParseSpecialAndBosPerFlags) {
  VocabData data = byte_level_data({});
  data.add_bos = true;
  const Vocab vocab = make_vocab(data);
  const int32_t eot = vocab.size() - 1;
  EXPECT_EQ(tokenize(vocab, "<|endoftext|>", false, true),
            (std::vector<int32_t>{eot}));
  const auto literal = tokenize(vocab, "<|endoftext|>", false, false);
  EXPECT_EQ(literal.size(), 13u);
  EXPECT_EQ(tokenize(vocab, "a", true, false),
            (std::vector<int32_t>{eot, 'a'}));
  EXPECT_EQ(detokenize(vocab, std::vector<int32_t>{eot, 'a'}, false),
            "<|endoftext|>a");
}

TEST(Bpe, StreamingHoldsBackPartialUtf8) {
  const Vocab vocab = make_vocab(byte_level_data({}));
  const std::string llama = "\xf0\x9f\xa6\x99"; // 🦙, four byte tokens here
  const auto ids = tokenize(vocab, "a" + llama, false, false);
  ASSERT_EQ(ids.size(), 5u);
  Detokenizer detokenizer(vocab);
  EXPECT_EQ(detokenizer.push(ids[0]), "a");
  EXPECT_EQ(detokenizer.push(ids[1]), "");
  EXPECT_EQ(detokenizer.push(ids[2]), "");
  EXPECT_EQ(detokenizer.push(ids[3]), "");
  EXPECT_EQ(detokenizer.push(ids[4]), llama);
  EXPECT_EQ(detokenizer.push(ids[1]), "");
  EXPECT_EQ(detokenizer.flush(),
            "\xf0"); // an unfinished character comes out as it is
}

TEST(Bpe, CleanSpacesOnlyInDetokenize) {
  const Vocab vocab = make_vocab(byte_level_data({}));
  ASSERT_TRUE(vocab.clean_spaces()); // gpt-2 cleans up like HF
  const auto ids = tokenize(vocab, "a , b 's", false, false);
  EXPECT_EQ(detokenize(vocab, ids, true), "a, b's");
}

TEST(PreTokenizer, EveryFamilyCompiles) {
  for (const char *pre :
       {"default",    "llama3",       "llama-bpe",      "dbrx",
        "glm4",       "deepseek-llm", "deepseek-coder", "deepseek-v3",
        "falcon",     "starcoder",    "refact",         "command-r",
        "gpt-2",      "mpt",          "olmo",           "qwen2",
        "stablelm2",  "qwen35",       "minicpm5",       "gpt-4o",
        "minimax-m2", "tekken",       "bailingmoe",     "seed-coder",
        "exaone-moe", "tiny_aya",     "laguna",         "bloom",
        "poro-chat",  "viking",       "hunyuan",        "grok-2"}) {
    auto pre_tokenizer = PreTokenizer::create(pre);
    ASSERT_TRUE(pre_tokenizer.ok())
        << pre << ": " << pre_tokenizer.error().message;
    std::vector<TextRange> words;
    pre_tokenizer->split("Hello, world! 123 \xe4\xb8\x96\xe7\x95\x8c\n\n",
                         words);
    EXPECT_FALSE(words.empty()) << pre;
  }
  auto unknown = PreTokenizer::create("kimi-k2");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().message,
            "unsupported pre-tokenizer type 'kimi-k2' (tokenizer.ggml.pre)");
}

TEST(PreTokenizer, UnicodeClassesAreReal) {
  auto gpt2 = PreTokenizer::create("gpt-2");
  ASSERT_TRUE(gpt2.ok());
  std::vector<TextRange> words;
  // \p{L} covers Cyrillic and CJK, \p{N} Arabic-Indic digits; the space sticks
  // to the word.
  const std::string text = "\xd0\xbf\xd1\x80\xd0\xb8 \xd9\xa3\xd9\xa4 x";
  gpt2->split(text, words);
  ASSERT_EQ(words.size(), 3u);
  EXPECT_EQ(text.substr(words[1].begin, words[1].end - words[1].begin),
            " \xd9\xa3\xd9\xa4");
}

// --- Hostile vocabulary files
// --------------------------------------------------------------

std::string load_error(VocabData data, const std::string &key = "",
                       GgufValue value = {}) {
  GgufWriter writer;
  write_vocab_metadata(data, writer);
  if (!key.empty())
    writer.set(key, std::move(value));
  const std::vector<uint8_t> storage = writer.serialize();
  auto file = GgufFile::parse(storage, "vocab.gguf");
  if (!file.ok())
    return "parse failed: " + file.error().message;
  auto vocab = load_vocab(*file);
  return vocab.ok() ? std::string("(loaded)") : vocab.error().message;
}

TEST(BpeVocabFile, InconsistentDataGivesClearErrors) {
  const VocabData good = byte_level_data({"a b"});
  EXPECT_EQ(load_error(good), "(loaded)");
  EXPECT_EQ(
      load_error(good, "tokenizer.ggml.scores", GgufValue::f32_array({0.0f})),
      "vocab.gguf: 'tokenizer.ggml.scores' has 1 entries but "
      "'tokenizer.ggml.tokens' has 258");
  EXPECT_EQ(load_error(good, "tokenizer.ggml.token_type",
                       GgufValue::i32_array({1, 1})),
            "vocab.gguf: 'tokenizer.ggml.token_type' has 2 entries but "
            "'tokenizer.ggml.tokens' "
            "has 258");
  EXPECT_EQ(load_error(good, "tokenizer.ggml.merges",
                       GgufValue::string_array({"a b", "a zz"})),
            "vocab.gguf: merge 1 ('a zz') names 'zz', which is not a token");
  EXPECT_EQ(load_error(good, "tokenizer.ggml.merges",
                       GgufValue::string_array({"b a"})),
            "vocab.gguf: merge 0 ('b a') names 'ba', which is not a token");
  EXPECT_EQ(
      load_error(good, "tokenizer.ggml.merges",
                 GgufValue::string_array({"ab"})),
      "vocab.gguf: merge 0 ('ab') is not two tokens separated by a space");
  EXPECT_EQ(load_error(good, "tokenizer.ggml.merges", GgufValue::u32(1))
                    .find("tokenizer.ggml.merges") != std::string::npos,
            true);
  EXPECT_EQ(
      load_error(good, "tokenizer.ggml.pre", GgufValue::string("nonsense")),
      "vocab.gguf: unsupported pre-tokenizer type 'nonsense' "
      "(tokenizer.ggml.pre)");
  VocabData no_merges = good;
  no_merges.merges.clear();
  EXPECT_EQ(
      load_error(no_merges),
      "vocab.gguf: byte-level BPE vocabulary without 'tokenizer.ggml.merges'");
}

// --- Random bytes through every family
// -----------------------------------------------------

std::string random_bytes(std::mt19937 &rng, size_t max_length) {
  std::string text(rng() % (max_length + 1), '\0');
  const int mode = static_cast<int>(rng() % 3);
  for (char &c : text) {
    // Mix fully random bytes, ASCII, and UTF-8 lead/continuation bytes (broken
    // sequences).
    const uint32_t r = rng();
    c = static_cast<char>(mode == 0   ? r & 0xFF
                          : mode == 1 ? 0x20 + r % 95
                                      : 0x80 + r % 0x78);
  }
  return text;
}

// Returns true when every byte of `text` has a NORMAL token of its own. Some
// vocabularies lack the bytes that never occur in UTF-8 (0xF5-0xFF), and
// DeepSeek's mark some byte characters
// ("ý") USER_DEFINED, which decode as their text (llama.cpp and HF alike): such
// bytes cannot come back.
bool every_byte_has_token(const Vocab &vocab, const std::string &text) {
  for (char c : text) {
    const int32_t id = vocab.bpe()->byte_token(static_cast<uint8_t>(c));
    if (id == kNoToken || !vocab.is_normal(id))
      return false;
  }
  return true;
}

void fuzz(const Vocab &vocab, const std::string &name, int rounds) {
  std::mt19937 rng(42);
  for (int round = 0; round < rounds; ++round) {
    const std::string text = random_bytes(rng, 96);
    const bool parse_special = round % 2 == 1;
    const auto ids = tokenize(vocab, text, round % 3 == 0, parse_special);
    for (int32_t id : ids)
      ASSERT_TRUE(vocab.is_valid(id)) << name << " round " << round;
    // Byte-level BPE keeps every byte, so the stream gives the input back
    // exactly.
    if (vocab.kind() == VocabKind::kBpe && !parse_special && round % 3 != 0 &&
        every_byte_has_token(vocab, text)) {
      Detokenizer detokenizer(vocab);
      std::string decoded;
      for (int32_t id : ids)
        decoded += detokenizer.push(id);
      ASSERT_EQ(decoded + detokenizer.flush(), text)
          << name << " round " << round;
    }
    (void)detokenize(vocab, ids, round % 2 == 0);
  }
}

TEST(Fuzz, SyntheticByteLevelVocab) {
  fuzz(make_vocab(byte_level_data({"a b", "Ġ a", "ab c"})), "synthetic", 500);
}

TEST(Fuzz, EveryRealFamily) {
  const std::filesystem::path dir =
      std::filesystem::path(MOE_TESTDATA_DIR) / "vocab";
  if (!std::filesystem::exists(dir))
    GTEST_SKIP() << "shared test data not found at " << dir;
  for (const char *name :
       {"llama-spm", "phi-3", "gpt-2", "starcoder", "mpt", "deepseek-llm",
        "deepseek-coder", "qwen2", "llama-bpe", "gpt-4o", "bert-bge",
        "gpt-neox", "baichuan"}) {
    auto file = GgufFile::open(
        (dir / ("ggml-vocab-" + std::string(name) + ".gguf")).string());
    ASSERT_TRUE(file.ok()) << file.error().message;
    auto vocab = load_vocab(*file);
    ASSERT_TRUE(vocab.ok()) << vocab.error().message;
    fuzz(*vocab, name, 150);
  }
}

} // namespace
} // namespace moe::tokenizer
