// Reading and writing the tokenizer.ggml.* metadata of a GGUF file.
#pragma once

#include "core/result.h"
#include "formats/gguf.h"
#include "tokenizer/vocab.h"

namespace moe::tokenizer {

// Returns the vocabulary data stored under tokenizer.ggml.* (plus general.name), starting from
// llama.cpp's defaults for the tokenizer model. Errors name the key: a missing token or merge
// list, arrays whose lengths disagree, a bad type, or a tokenizer model ("llama", "gpt2",
// "bert") or pre-tokenizer that is not supported.
Result<VocabData> read_vocab_data(const formats::GgufFile& file);

// Returns the checked vocabulary of `file` (read_vocab_data, then Vocab::create).
Result<Vocab> load_vocab(const formats::GgufFile& file);

// Sets every tokenizer.ggml.* key llama.cpp reads for the vocabulary (pre and merges only when
// present).
void write_vocab_metadata(const VocabData& data, formats::GgufWriter& writer);

}  // namespace moe::tokenizer
