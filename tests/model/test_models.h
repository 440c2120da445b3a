// Helpers for model tests: write random models to temporary files and edit GGUF files.
#pragma once

#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>

#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "model/random_model.h"
#include "tokenizer/vocab.h"

namespace moe::model::testing {

// A file removed when the object goes away.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& stem) {
    path = (std::filesystem::temp_directory_path() /
            (stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++) + ".gguf"))
               .string();
  }
  ~TempFile() { std::remove(path.c_str()); }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

// Writes a random model of `preset` (built-in byte vocab) to `path`; `edit` may change the
// hyperparameters first.
inline Status write_random_model(const std::string& path, const std::string& preset, DType type, uint64_t seed,
                                 const std::function<void(HParams&)>& edit = {}, const std::string& arch = "llama") {
  MOE_ASSIGN_OR_RETURN(HParams hp, preset_hparams(arch, preset));
  if (edit) edit(hp);
  formats::GgufWriter writer;
  const tokenizer::VocabData vocab = tokenizer::builtin_byte_vocab();
  tokenizer::write_vocab_metadata(vocab, writer);
  hp.n_vocab = static_cast<int64_t>(vocab.tokens.size());
  ThreadPool pool(2);
  RandomModelOptions options;
  options.weight_type = type;
  options.seed = seed;
  MOE_TRY(add_random_model(hp, options, pool, writer));
  return writer.write(path);
}

// Copies `src` to `dst`, letting `keep_tensor` drop tensors and `edit` change metadata and add
// tensors before writing.
inline Status copy_gguf(const std::string& src, const std::string& dst,
                        const std::function<bool(const formats::GgufTensorInfo&)>& keep_tensor,
                        const std::function<void(formats::GgufWriter&)>& edit = {}) {
  MOE_ASSIGN_OR_RETURN(formats::GgufFile file, formats::GgufFile::open(src));
  formats::GgufWriter writer;
  for (const auto& [key, value] : file.metadata()) writer.set(key, value);
  for (const auto& t : file.tensors()) {
    if (!keep_tensor(t)) continue;
    MOE_TRY(writer.add_tensor(t.name, t.type, t.shape, std::vector<uint8_t>(t.data, t.data + t.n_bytes)));
  }
  if (edit) edit(writer);
  return writer.write(dst);
}

}  // namespace moe::model::testing
