#include "tokenizer/gguf_vocab.h"

#include "tokenizer/pre_tokenizer.h"

namespace moe::tokenizer {
namespace {

constexpr std::string_view kModelKey = "tokenizer.ggml.model";
constexpr std::string_view kTokensKey = "tokenizer.ggml.tokens";
constexpr std::string_view kScoresKey = "tokenizer.ggml.scores";
constexpr std::string_view kTypesKey = "tokenizer.ggml.token_type";
constexpr std::string_view kPreKey = "tokenizer.ggml.pre";
constexpr std::string_view kMergesKey = "tokenizer.ggml.merges";

// Sets the defaults llama.cpp uses for each tokenizer model before the file's
// keys override them (llama_vocab::impl::load). The pre-tokenizer decides BPE's
// add_bos default.
Status apply_model_defaults(const formats::GgufFile &file, VocabData &data) {
  if (data.model == "llama")
    return ok_status(); // VocabData's defaults are SPM's
  if (data.model == "bert") {
    data.bos_id = 101; // [CLS]
    data.eos_id = kNoToken;
    data.unk_id = 100;
    data.sep_id = 102;
    data.pad_id = 0;
    data.add_bos = true;
    data.add_sep = true;
    data.add_space_prefix = false;
    return ok_status();
  }
  if (data.model == "gpt2") {
    const auto traits = find_pre_tokenizer_traits(data.pre);
    if (!traits) {
      return make_error("{}: unsupported pre-tokenizer type '{}' ({})",
                        file.path(), data.pre, kPreKey);
    }
    data.bos_id = traits->disable_bos ? kNoToken : 11;
    data.eos_id = 11;
    data.unk_id = kNoToken;
    data.add_bos = traits->add_bos;
    data.add_space_prefix = false;
    return ok_status();
  }
  return make_error("{}: unsupported tokenizer model '{}' (supported: 'llama' "
                    "SentencePiece BPE, 'gpt2' "
                    "byte-level BPE, 'bert' WordPiece)",
                    file.path(), data.model);
}

// Reads an optional special-token id key into `id`, keeping the default when
// absent.
Status read_special_id(const formats::GgufFile &file, std::string_view key,
                       int32_t &id) {
  MOE_ASSIGN_OR_RETURN(const std::optional<uint32_t> value,
                       file.get_u32_opt(key));
  if (!value)
    return ok_status();
  if (*value > static_cast<uint32_t>(INT32_MAX)) {
    return make_error("{}: key '{}' = {} is not a token id", file.path(), key,
                      *value);
  }
  id = static_cast<int32_t>(*value);
  return ok_status();
}

Status read_flag(const formats::GgufFile &file, std::string_view key,
                 bool &flag) {
  MOE_ASSIGN_OR_RETURN(const std::optional<bool> value, file.get_bool_opt(key));
  if (value)
    flag = *value;
  return ok_status();
}

Status read_arrays(const formats::GgufFile &file, VocabData &data) {
  MOE_ASSIGN_OR_RETURN(data.tokens, file.get_string_array(kTokensKey));
  const size_t n = data.tokens.size();
  if (file.find(kScoresKey) != nullptr) {
    MOE_ASSIGN_OR_RETURN(data.scores, file.get_f32_array(kScoresKey));
    if (data.scores.size() != n) {
      return make_error("{}: '{}' has {} entries but '{}' has {}", file.path(),
                        kScoresKey, data.scores.size(), kTokensKey, n);
    }
  }
  if (file.find(kTypesKey) != nullptr) {
    MOE_ASSIGN_OR_RETURN(const std::vector<int64_t> types,
                         file.get_int_array(kTypesKey));
    if (types.size() != n) {
      return make_error("{}: '{}' has {} entries but '{}' has {}", file.path(),
                        kTypesKey, types.size(), kTokensKey, n);
    }
    data.token_types.reserve(n);
    // Out-of-range types become UNDEFINED, as llama.cpp treats them.
    for (int64_t type : types)
      data.token_types.push_back(type >= 0 && type <= 6 ? int32_t(type) : 0);
  }
  return ok_status();
}

} // namespace

Result<VocabData> read_vocab_data(const formats::GgufFile &file) {
  VocabData data;
  MOE_ASSIGN_OR_RETURN(data.model, file.get_string(kModelKey));
  if (data.model == "gpt2") {
    MOE_ASSIGN_OR_RETURN(const std::optional<std::string> pre,
                         file.get_string_opt(kPreKey));
    data.pre = pre.value_or("");
    if (file.find(kMergesKey) == nullptr) {
      return make_error("{}: byte-level BPE vocabulary without '{}'",
                        file.path(), kMergesKey);
    }
    MOE_ASSIGN_OR_RETURN(data.merges, file.get_string_array(kMergesKey));
  }
  MOE_TRY(apply_model_defaults(file, data));
  MOE_ASSIGN_OR_RETURN(const std::optional<std::string> name,
                       file.get_string_opt("general.name"));
  data.name = name.value_or("");
  MOE_TRY(read_arrays(file, data));
  MOE_TRY(read_special_id(file, "tokenizer.ggml.bos_token_id", data.bos_id));
  MOE_TRY(read_special_id(file, "tokenizer.ggml.eos_token_id", data.eos_id));
  MOE_TRY(
      read_special_id(file, "tokenizer.ggml.unknown_token_id", data.unk_id));
  MOE_TRY(
      read_special_id(file, "tokenizer.ggml.padding_token_id", data.pad_id));
  MOE_TRY(read_special_id(file, "tokenizer.ggml.eot_token_id", data.eot_id));
  MOE_TRY(read_special_id(file, "tokenizer.ggml.eom_token_id", data.eom_id));
  // llama.cpp's key name carries the misspelling.
  MOE_TRY(
      read_special_id(file, "tokenizer.ggml.seperator_token_id", data.sep_id));
  MOE_TRY(read_flag(file, "tokenizer.ggml.add_bos_token", data.add_bos));
  MOE_TRY(read_flag(file, "tokenizer.ggml.add_eos_token", data.add_eos));
  MOE_TRY(read_flag(file, "tokenizer.ggml.add_sep_token", data.add_sep));
  MOE_TRY(read_flag(file, "tokenizer.ggml.add_space_prefix",
                    data.add_space_prefix));
  return data;
}

Result<Vocab> load_vocab(const formats::GgufFile &file) {
  MOE_ASSIGN_OR_RETURN(VocabData data, read_vocab_data(file));
  auto vocab = Vocab::create(std::move(data));
  if (!vocab.ok())
    return make_error("{}: {}", file.path(), vocab.error().message);
  return vocab;
}

void write_vocab_metadata(const VocabData &data, formats::GgufWriter &writer) {
  using formats::GgufValue;
  const size_t n = data.tokens.size();
  std::vector<float> scores = data.scores;
  if (scores.empty())
    scores.assign(n, 0.0f);
  std::vector<int32_t> types = data.token_types;
  if (types.empty())
    types.assign(n, static_cast<int32_t>(TokenType::kNormal));
  writer.set(std::string(kModelKey), GgufValue::string(data.model));
  writer.set(std::string(kTokensKey), GgufValue::string_array(data.tokens));
  writer.set(std::string(kScoresKey), GgufValue::f32_array(std::move(scores)));
  writer.set(std::string(kTypesKey), GgufValue::i32_array(std::move(types)));
  if (!data.pre.empty())
    writer.set(std::string(kPreKey), GgufValue::string(data.pre));
  if (!data.merges.empty())
    writer.set(std::string(kMergesKey), GgufValue::string_array(data.merges));
  const std::pair<const char *, int32_t> ids[] = {
      {"tokenizer.ggml.bos_token_id", data.bos_id},
      {"tokenizer.ggml.eos_token_id", data.eos_id},
      {"tokenizer.ggml.unknown_token_id", data.unk_id},
      {"tokenizer.ggml.padding_token_id", data.pad_id},
      {"tokenizer.ggml.eot_token_id", data.eot_id},
      {"tokenizer.ggml.eom_token_id", data.eom_id},
      {"tokenizer.ggml.seperator_token_id", data.sep_id},
  };
  for (const auto &[key, id] : ids) {
    if (id != kNoToken)
      writer.set(key, GgufValue::u32(static_cast<uint32_t>(id)));
  }
  writer.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(data.add_bos));
  writer.set("tokenizer.ggml.add_eos_token", GgufValue::boolean(data.add_eos));
  writer.set("tokenizer.ggml.add_sep_token", GgufValue::boolean(data.add_sep));
  writer.set("tokenizer.ggml.add_space_prefix",
             GgufValue::boolean(data.add_space_prefix));
}

} // namespace moe::tokenizer
