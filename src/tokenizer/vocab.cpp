#include "tokenizer/vocab.h"

#include <algorithm>

#include "core/log.h"
#include "tokenizer/bpe.h"

namespace moe::tokenizer {
namespace {

// Texts llama.cpp treats as control tokens whatever their stored type
// (end-of-turn, FIM and end-of-generation markers; see
// llama_vocab::impl::load). Forcing CONTROL matters: such a token is then only
// parsed with parse_special and only rendered on request.
constexpr std::string_view kEotTexts[] = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
};
constexpr std::string_view kFimTexts[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",    "<｜fim▁begin｜>",
    "<PRE>",          "▁<PRE>",       "<|code_prefix|>", "<|prefix|>",
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",    "<｜fim▁hole｜>",
    "<SUF>",          "▁<SUF>",       "<|code_suffix|>", "<|suffix|>",
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>",    "<｜fim▁end｜>",
    "<MID>",          "▁<MID>",       "<|code_middle|>", "<|middle|>",
};
// FIM pad / repo / file-separator markers also end generation.
constexpr std::string_view kFimEogTexts[] = {
    "<|fim_pad|>", "<fim-pad>",    "<fim_pad>",     "<PAD>",
    "[PAD]",       "<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
    "<REPO>",      "<reponame>",   "<|file_sep|>",
};
constexpr std::string_view kEogTexts[] = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
};

template <size_t N>
bool contains(const std::string_view (&list)[N], std::string_view text) {
  return std::find(std::begin(list), std::end(list), text) != std::end(list);
}

std::string byte_token_text(uint8_t byte) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  return std::string{'<', '0', 'x', kHex[byte >> 4], kHex[byte & 15], '>'};
}

// Returns the value of a hex digit, or -1 (a hostile file may label any text
// BYTE).
int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

std::string lowercase(std::string s) {
  for (char &c : s) {
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

} // namespace

Result<Vocab> Vocab::create(VocabData data) {
  Vocab vocab;
  MOE_TRY(vocab.init_tokens(data));
  MOE_TRY(vocab.init_kind(data));
  vocab.init_special_ids(data);
  vocab.detect_control_texts();
  vocab.init_special_cache();
  vocab.init_spm_splitting();
  vocab.apply_model_fixes(data.name);
  return vocab;
}

uint32_t Vocab::attr_for_type(TokenType type) {
  switch (type) {
  case TokenType::kUnknown:
    return kAttrUnknown;
  case TokenType::kUnused:
    return kAttrUnused;
  case TokenType::kNormal:
    return kAttrNormal;
  case TokenType::kControl:
    return kAttrControl;
  case TokenType::kUserDefined:
    return kAttrUserDefined;
  case TokenType::kByte:
    return kAttrByte;
  case TokenType::kUndefined:
    return 0;
  }
  return 0; // unknown type values are treated as undefined, as llama.cpp does
}

Status Vocab::init_tokens(VocabData &data) {
  const size_t n = data.tokens.size();
  if (n == 0)
    return make_error("vocabulary has no tokens");
  if (n > static_cast<size_t>(INT32_MAX))
    return make_error("vocabulary has {} tokens, too many", n);
  if (!data.scores.empty() && data.scores.size() != n) {
    return make_error("vocabulary has {} tokens but {} scores", n,
                      data.scores.size());
  }
  if (!data.token_types.empty() && data.token_types.size() != n) {
    return make_error("vocabulary has {} tokens but {} token types", n,
                      data.token_types.size());
  }
  tokens_.resize(n);
  text_to_id_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    Token &token = tokens_[i];
    token.text = std::move(data.tokens[i]);
    // llama.cpp renames empty tokens so every text stays unique and non-empty.
    if (token.text.empty())
      token.text = "[EMPTY_" + std::to_string(i) + "]";
    token.score = data.scores.empty() ? 0.0f : data.scores[i];
    token.type = data.token_types.empty() ? TokenType::kNormal
                                          : TokenType(data.token_types[i]);
    token.attr = attr_for_type(token.type);
    max_token_length_ = std::max(max_token_length_, token.text.size());
    const auto [it, inserted] =
        text_to_id_.emplace(token.text, static_cast<int32_t>(i));
    if (!inserted) {
      return make_error(
          "vocabulary token {} duplicates the text of token {} ('{}')", i,
          it->second, token.text);
    }
  }
  for (int byte = 0; byte < 256; ++byte) {
    auto id = find(byte_token_text(static_cast<uint8_t>(byte)));
    if (!id)
      id = find(std::string(1, static_cast<char>(byte)));
    byte_tokens_[byte] = id.value_or(kNoToken);
  }
  return ok_status();
}

Status Vocab::init_kind(const VocabData &data) {
  if (data.model == "llama") {
    kind_ = VocabKind::kSpm;
  } else if (data.model == "bert") {
    kind_ = VocabKind::kWpm;
    clean_spaces_ = true;
  } else if (data.model == "gpt2") {
    kind_ = VocabKind::kBpe;
    MOE_ASSIGN_OR_RETURN(bpe_, BpeModel::create(*this, data.merges, data.pre));
    clean_spaces_ = bpe_->pre_tokenizer().traits().clean_spaces;
  } else {
    return make_error("unsupported tokenizer model '{}' (supported: 'llama' "
                      "SentencePiece BPE, 'gpt2' "
                      "byte-level BPE, 'bert' WordPiece)",
                      data.model);
  }
  return ok_status();
}

int32_t Vocab::checked_special(int32_t id, const char *what) const {
  if (id == kNoToken || is_valid(id))
    return id;
  MOE_LOG_WARN("vocabulary: {} token id {} is outside the vocabulary ({} "
               "tokens), disabling",
               what, id, size());
  return kNoToken;
}

void Vocab::init_special_ids(const VocabData &data) {
  bos_id_ = checked_special(data.bos_id, "BOS");
  eos_id_ = checked_special(data.eos_id, "EOS");
  unk_id_ = checked_special(data.unk_id, "UNK");
  pad_id_ = checked_special(data.pad_id, "padding");
  eot_id_ = checked_special(data.eot_id, "EOT");
  eom_id_ = checked_special(data.eom_id, "EOM");
  sep_id_ = checked_special(data.sep_id, "separator");
  add_bos_ = data.add_bos && bos_id_ != kNoToken;
  add_eos_ = data.add_eos && eos_id_ != kNoToken;
  add_sep_ = data.add_sep && sep_id_ != kNoToken;
  add_space_prefix_ = data.add_space_prefix;
}

// llama.cpp recognises end markers by their text (converters do not always
// record them) and forces them to CONTROL; the end-of-generation set is built
// the same way.
void Vocab::detect_control_texts() {
  std::vector<int32_t> eog;
  for (int32_t id = 0; id < size(); ++id) {
    Token &token = tokens_[id];
    const bool eot = contains(kEotTexts, token.text);
    const bool fim_eog = contains(kFimEogTexts, token.text);
    const bool eog_text = contains(kEogTexts, token.text);
    if (eot && eot_id_ == kNoToken)
      eot_id_ = id;
    if (token.text == "<|eom_id|>" && eom_id_ == kNoToken)
      eom_id_ = id;
    if (eot || fim_eog || eog_text || contains(kFimTexts, token.text) ||
        token.text == "<|eom_id|>") {
      token.attr |= kAttrControl;
    }
    if (fim_eog || eog_text)
      eog.push_back(id);
  }
  for (int32_t id : {eos_id_, eot_id_, eom_id_}) {
    if (id != kNoToken)
      eog.push_back(id);
  }
  std::sort(eog.begin(), eog.end());
  eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
  eog_ids_ = std::move(eog);
}

void Vocab::init_special_cache() {
  for (int32_t id = 0; id < size(); ++id) {
    if (tokens_[id].attr & (kAttrControl | kAttrUserDefined | kAttrUnknown)) {
      special_tokens_.push_back(id);
    }
  }
  // Stable, so equal-length tokens keep id order and the result is
  // deterministic.
  std::stable_sort(special_tokens_.begin(), special_tokens_.end(),
                   [&](int32_t a, int32_t b) {
                     return tokens_[a].text.size() > tokens_[b].text.size();
                   });
}

// Per-model attribute fixes llama.cpp applies by general.name. Phi-3's special
// tokens swallow the whitespace after them (HF rstrip=True), except <unk>, <s>
// and <|endoftext|>.
void Vocab::apply_model_fixes(const std::string &name) {
  const std::string lower = lowercase(name);
  if (lower.find("phi-3") == std::string::npos &&
      lower.find("phi3") == std::string::npos)
    return;
  for (int32_t id : special_tokens_)
    tokens_[id].attr |= kAttrRstrip;
  if (auto id = find("</s>"))
    tokens_[*id].attr |= kAttrRstrip;
  for (std::string_view text : {"<unk>", "<s>", "<|endoftext|>"}) {
    if (auto id = find(text))
      tokens_[*id].attr &= ~kAttrRstrip;
  }
}

void Vocab::init_spm_splitting() {
  constexpr std::string_view kMarker = "\xe2\x96\x81"; // "▁"
  spm_splits_at_spaces_ = kind_ == VocabKind::kSpm;
  for (const Token &token : tokens_) {
    if (!spm_splits_at_spaces_)
      return;
    const std::string_view text = token.text;
    const size_t inner = text.find(kMarker, 1);
    if (inner == std::string_view::npos)
      continue;
    // "▁▁▁" (a run of spaces) is fine: it cannot span a "▁" that follows
    // another character.
    bool only_markers = text.size() % kMarker.size() == 0;
    for (size_t pos = 0; only_markers && pos < text.size();
         pos += kMarker.size()) {
      only_markers = text.substr(pos, kMarker.size()) == kMarker;
    }
    spm_splits_at_spaces_ = only_markers;
  }
}

bool Vocab::is_eog(int32_t id) const {
  return std::binary_search(eog_ids_.begin(), eog_ids_.end(), id);
}

std::optional<int32_t> Vocab::find(std::string_view text) const {
  const auto it = text_to_id_.find(text);
  if (it == text_to_id_.end())
    return std::nullopt;
  return it->second;
}

uint8_t Vocab::byte_value(int32_t id) const {
  const std::string &text = token_text(id);
  // A BYTE token is "<0xXX>"; anything else (a one-byte fallback text) is its
  // own byte.
  if (text.size() == 6 && text.compare(0, 3, "<0x") == 0) {
    const int high = hex_digit(text[3]);
    const int low = hex_digit(text[4]);
    if (high >= 0 && low >= 0)
      return static_cast<uint8_t>(high * 16 + low);
  }
  return static_cast<uint8_t>(text[0]);
}

} // namespace moe::tokenizer
