#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pre_tokenizer.h"

#include <pcre2.h>

#include "core/log.h"
#include "tokenizer/utf8.h"

namespace moe::tokenizer {
namespace {

// The patterns are Hugging Face's originals (tokenizer.json), which PCRE2 runs
// as written. llama.cpp rewrites several of them for its own engine ((?i:'s) ->
// '[sS]; \p{M} dropped from gpt-4o's letter classes; the GPT-2 pattern without
// its final |\s+), which changes a few results; the reference ids come from the
// originals.
constexpr std::string_view kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen35 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kMiniCpm5 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kGpt4o =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kTekken =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kDeepseek3 =
    R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kBailingMoe =
    R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)";
constexpr std::string_view kSeedCoder =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kExaoneMoe =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+)";
constexpr std::string_view kTinyAyaWords =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Bloom's class also excludes … 。 ， 、 । ۔ ، (U+2026 U+3002 U+FF0C U+3001
// U+0964 U+06D4 U+060C).
constexpr std::string_view kBloom =
    R"( ?[^(\s|.,!?\x{2026}\x{3002}\x{FF0C}\x{3001}\x{964}\x{6D4}\x{60C})]+)";
// DeepSeek LLM's letter class is a literal list of Latin, Greek, Cyrillic, ...
// ranges. Non-ASCII characters are written as \x{...}: several of them (U+1FBE,
// U+2126, U+212A) have canonical equivalents that an editor's normalisation
// would silently swap in.
constexpr std::string_view kDeepseekLlmLetters =
    R"(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293})"
    R"(\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A})"
    R"(\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556})"
    R"(\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF})"
    R"(\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D})"
    R"(\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D})"
    R"(\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4})"
    R"(\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4})"
    R"(\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124})"
    R"(\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F})"
    R"(\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4})"
    R"(\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F})"
    R"(\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17})"
    R"(\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3})"
    R"(\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF})"
    R"(\x{1E900}-\x{1E943}]+)";
constexpr std::string_view kDeepseekLlmPunct =
    R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)";
// CJK unified ideographs, then U+0800..U+4E00 (everything between), then
// Hangul.
constexpr std::string_view kCjkHangul =
    R"([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";
// CJK ideographs, Hiragana, Katakana.
constexpr std::string_view kCjkKana =
    R"([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)";

// One pre-tokenizer family: the tokenizer.ggml.pre names that select it, its
// regexes in the order they split, and its traits.
struct Family {
  std::vector<std::string_view> names;
  std::vector<std::string_view> regexes;
  PreTokenizerTraits traits;
};

constexpr PreTokenizerTraits kClean{}; // HF cleanup on decode
constexpr PreTokenizerTraits kRaw{.clean_spaces =
                                      false}; // decode keeps every space
constexpr PreTokenizerTraits kLlama3Traits{.ignore_merges = true,
                                           .add_bos = true};

// llama.cpp's table of tokenizer.ggml.pre values (llama-vocab.cpp,
// llm_tokenizer_bpe). Values whose pre-tokenizer is custom code there (kimi-k2,
// afmoe, chameleon) are not listed and give an error.
const std::vector<Family> &families() {
  static const std::vector<Family> kFamilies = {
      {{"default"},
       {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"},
       kClean},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
        "midm-2.0", "lfm2", "jina-v5-nano"},
       {kLlama3},
       kLlama3Traits},
      {{"dbrx", "smaug-bpe"}, {kLlama3}, kClean},
      {{"chatglm-bpe", "glm4"}, {kLlama3}, {.disable_bos = true}},
      {{"deepseek-llm"},
       {"[\r\n]", kDeepseekLlmLetters, kDeepseekLlmPunct, R"(\s+$)", kCjkHangul,
        R"(\p{N}+)"},
       kRaw},
      {{"deepseek-coder"},
       {"[\r\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kCjkHangul, R"(\p{N})"},
       kRaw},
      {{"deepseek-v3", "hunyuan-dense", "joyai-llm"},
       {R"(\p{N}{1,3})", kCjkKana, kDeepseek3},
       kRaw},
      {{"falcon"},
       {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"},
       kClean},
      {{"starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"},
       {R"(\p{N})", kGpt2},
       kClean},
      {{"command-r", "smollm"}, {R"(\p{N})", kGpt2}, kRaw},
      {{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es",
        "jina-v2-de", "a.x-4.0", "mellum", "modern-bert", "mpt", "olmo", "jais",
        "exaone4", "jina-v1-en", "jina-v2-code", "roberta-bpe"},
       {kGpt2},
       kClean},
      {{"trillion", "granite-docling"}, {kGpt2}, kRaw},
      {{"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan",
        "solar-open", "grok-2"},
       {kQwen2},
       kRaw},
      {{"stablelm2", "megrez"}, {kQwen2}, kClean},
      {{"qwen35"}, {kQwen35}, kRaw},
      {{"minicpm5"}, {R"(\p{N}{1,3})", kMiniCpm5}, {.ignore_merges = true}},
      {{"gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"}, {kGpt4o}, kRaw},
      {{"tekken"},
       {kTekken},
       {.ignore_merges = true, .clean_spaces = false, .add_bos = true}},
      {{"bailingmoe", "bailingmoe2", "llada-moe"}, {kBailingMoe}, kRaw},
      {{"seed-coder"}, {kSeedCoder}, kRaw},
      {{"exaone-moe"}, {kExaoneMoe}, kClean},
      {{"tiny_aya", "cohere2moe"},
       {R"(\d{1,3}(?=(?:\d{3})*\b))", kTinyAyaWords},
       kRaw},
      {{"laguna"}, {"[^\\n]+|[\\n]+", kQwen2}, kRaw},
      {{"bloom", "gpt3-finnish"}, {kBloom}, kClean},
      {{"poro-chat"}, {kBloom}, kRaw},
      {{"viking"}, {kBloom, R"(\p{N})"}, kRaw},
  };
  return kFamilies;
}

const Family *find_family(std::string_view pre) {
  for (const Family &family : families()) {
    for (std::string_view name : family.names) {
      if (name == pre)
        return &family;
    }
  }
  return nullptr;
}

// Per-thread match state: PCRE2 match data and a JIT stack are reused across
// calls so that matching allocates nothing. (Compiled patterns are shared;
// match data may not be.)
struct MatchScratch {
  pcre2_match_data *data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context *context = pcre2_match_context_create(nullptr);
  // Long runs of one class (a 100 kB line of spaces) need more than PCRE2's 32
  // kB default.
  pcre2_jit_stack *jit_stack =
      pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, nullptr);
  std::vector<TextRange> pieces;
  MatchScratch() { pcre2_jit_stack_assign(context, nullptr, jit_stack); }
  ~MatchScratch() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
  MatchScratch(const MatchScratch &) = delete;
  MatchScratch &operator=(const MatchScratch &) = delete;
};

MatchScratch &scratch() {
  thread_local MatchScratch kScratch;
  return kScratch;
}

} // namespace

class PreTokenizer::Regex {
public:
  static Result<std::shared_ptr<const Regex>>
  compile(std::string_view pattern) {
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    // UCP: \s, \d, \w and POSIX classes use Unicode properties, as in Rust and
    // Oniguruma. MATCH_INVALID_UTF: malformed input is matched (never as part
    // of a character) instead of rejected, so arbitrary bytes tokenize.
    pcre2_code *code = pcre2_compile(
        reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
        PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &error_offset,
        nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      return make_error(
          "pre-tokenizer regex '{}' does not compile at offset {}: {}", pattern,
          error_offset, reinterpret_cast<const char *>(message));
    }
    auto regex = std::make_shared<Regex>();
    regex->code_ = code;
    // JIT is an optimisation; without it (unsupported CPU) pcre2_match
    // interprets.
    regex->jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    return std::shared_ptr<const Regex>(std::move(regex));
  }

  Regex() = default;
  Regex(const Regex &) = delete;
  Regex &operator=(const Regex &) = delete;
  ~Regex() { pcre2_code_free(code_); }

  // Appends to `out` the matches of the regex in text[range) and the gaps
  // between them.
  void split(std::string_view text, TextRange range, MatchScratch &scratch,
             std::vector<TextRange> &out) const {
    const auto *subject =
        reinterpret_cast<PCRE2_SPTR>(text.data() + range.begin);
    const size_t length = range.end - range.begin;
    size_t gap = 0;    // start of the text not yet covered by a piece
    size_t search = 0; // where the next match may start
    while (search < length) {
      const int rc = jit_ ? pcre2_jit_match(code_, subject, length, search, 0,
                                            scratch.data, scratch.context)
                          : pcre2_match(code_, subject, length, search, 0,
                                        scratch.data, scratch.context);
      if (rc < 0) {
        // Anything but "no match" (a resource limit) leaves the rest as one
        // piece.
        if (rc != PCRE2_ERROR_NOMATCH)
          MOE_LOG_WARN("pre-tokenizer: PCRE2 match error {}", rc);
        break;
      }
      const PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(scratch.data);
      const size_t begin = ovector[0];
      const size_t end = ovector[1];
      if (end == begin) {
        // An empty match (a lookahead-only pattern) makes no piece: step over
        // one character.
        search = begin +
                 std::min(utf8_sequence_length(subject[begin]), length - begin);
        continue;
      }
      if (begin > gap)
        out.push_back({range.begin + gap, range.begin + begin});
      out.push_back({range.begin + begin, range.begin + end});
      gap = search = end;
    }
    if (gap < length)
      out.push_back({range.begin + gap, range.end});
  }

private:
  pcre2_code *code_ = nullptr;
  bool jit_ = false;
};

std::optional<PreTokenizerTraits>
find_pre_tokenizer_traits(std::string_view pre) {
  const Family *family = find_family(pre.empty() ? "default" : pre);
  if (family == nullptr)
    return std::nullopt;
  return family->traits;
}

Result<PreTokenizer> PreTokenizer::create(std::string_view pre) {
  const std::string_view name = pre.empty() ? "default" : pre;
  const Family *family = find_family(name);
  if (family == nullptr) {
    return make_error(
        "unsupported pre-tokenizer type '{}' (tokenizer.ggml.pre)", name);
  }
  PreTokenizer tokenizer;
  tokenizer.name_ = std::string(name);
  tokenizer.traits_ = family->traits;
  for (std::string_view pattern : family->regexes) {
    MOE_ASSIGN_OR_RETURN(auto regex, Regex::compile(pattern));
    tokenizer.regexes_.push_back(std::move(regex));
  }
  return tokenizer;
}

void PreTokenizer::split(std::string_view text,
                         std::vector<TextRange> &words) const {
  words.clear();
  if (text.empty())
    return;
  words.push_back({0, text.size()});
  MatchScratch &state = scratch();
  for (const auto &regex : regexes_) {
    state.pieces.clear();
    for (const TextRange &range : words)
      regex->split(text, range, state, state.pieces);
    words.swap(state.pieces);
  }
}

} // namespace moe::tokenizer
