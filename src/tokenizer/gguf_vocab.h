// Reading and writing the tokenizer.ggml.* metadata of a GGUF file.
#pragma once

#include "core/result.h"
#include "formats/gguf.h"
#include "tokenizer/vocab.h"

namespace moe::tokenizer {

// Returns the vocabulary data stored under tokenizer.ggml.* (plus general.name). Errors name
// the key: a missing token list, arrays whose lengths disagree, a bad type, or a tokenizer model
// other than "llama" (SentencePiece BPE), the only one implemented so far.
Result<VocabData> read_vocab_data(const formats::GgufFile& file);

// Returns the checked vocabulary of `file` (read_vocab_data, then Vocab::create).
Result<Vocab> load_vocab(const formats::GgufFile& file);

// Sets every tokenizer.ggml.* key llama.cpp reads for an SPM vocabulary.
void write_vocab_metadata(const VocabData& data, formats::GgufWriter& writer);

}  // namespace moe::tokenizer
