// `moe tokenize -m FILE` and `moe detokenize -m FILE`: text <-> token ids with
// a model's or a vocabulary-only GGUF file's tokenizer. Input is taken as exact
// bytes (no newline added or stripped), so the ids are the ones the runtime
// would see.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "formats/gguf.h"
#include "tokenizer/vocab.h"

namespace moe::cli {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start)
      .count();
}

struct TokenizeOptions {
  std::string model_path;
  std::string prompt;
  std::string file;
  bool ids_only = false;
  bool add_special = false;
  bool parse_special = false;
  bool stats = false;
};

struct DetokenizeOptions {
  std::string model_path;
  std::vector<std::string> ids;
  bool skip_special = false;
};

std::string read_stream(std::FILE *stream) {
  std::string out;
  char buffer[1 << 16];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), stream)) > 0)
    out.append(buffer, n);
  return out;
}

Result<std::string> read_file(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return make_error("cannot open '{}'", path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Returns the vocabulary of `path`; the file may hold only tokenizer metadata.
Result<tokenizer::Vocab> open_vocab(const std::string &path) {
  MOE_ASSIGN_OR_RETURN(const formats::GgufFile file,
                       formats::GgufFile::open(path));
  return tokenizer::load_vocab(file);
}

Result<std::string> input_text(const TokenizeOptions &options) {
  if (!options.prompt.empty() && !options.file.empty()) {
    return make_error("give the text with -p or -f, not both");
  }
  if (!options.file.empty())
    return read_file(options.file);
  if (!options.prompt.empty())
    return options.prompt;
  return read_stream(stdin);
}

void print_tokens(const tokenizer::Vocab &vocab,
                  const std::vector<int32_t> &ids, bool ids_only) {
  std::string out;
  if (ids_only) {
    for (size_t i = 0; i < ids.size(); ++i)
      out += fmt::format("{}{}", i ? " " : "", ids[i]);
    out += '\n';
  } else {
    for (int32_t id : ids) {
      out += fmt::format("{} -> '{}'\n", id,
                         tokenizer::token_to_piece(vocab, id, true));
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
}

int run_tokenize(const TokenizeOptions &options) {
  const auto load_start = Clock::now();
  auto vocab = open_vocab(options.model_path);
  if (!vocab.ok())
    return report_error(vocab.error().message);
  const double load_ms = ms_since(load_start);
  auto text = input_text(options);
  if (!text.ok())
    return report_error(text.error().message);
  const auto start = Clock::now();
  const std::vector<int32_t> ids = tokenizer::tokenize(
      *vocab, *text, options.add_special, options.parse_special);
  const double tokenize_ms = ms_since(start);
  print_tokens(*vocab, ids, options.ids_only);
  if (options.stats) {
    std::fprintf(stderr,
                 "load: %.1f ms, tokenize: %.1f ms, %zu bytes -> %zu tokens, "
                 "%.2f MB/s\n",
                 load_ms, tokenize_ms, text->size(), ids.size(),
                 tokenize_ms > 0
                     ? static_cast<double>(text->size()) / 1e3 / tokenize_ms
                     : 0.0);
  }
  return 0;
}

// Accepts ids separated by spaces, commas or newlines, optionally in brackets
// ("[1, 2]"), so the output of `moe tokenize --ids` and llama-tokenize --ids
// both work.
Result<std::vector<int32_t>> parse_ids(const std::string &text,
                                       const tokenizer::Vocab &vocab) {
  std::string cleaned = text;
  for (char &c : cleaned) {
    if (c == ',' || c == '[' || c == ']')
      c = ' ';
  }
  std::istringstream in(cleaned);
  std::vector<int32_t> ids;
  std::string word;
  while (in >> word) {
    size_t used = 0;
    long long value = -1;
    try {
      value = std::stoll(word, &used);
    } catch (const std::exception &) {
      used = 0;
    }
    if (used != word.size() || value < 0 || value >= vocab.size()) {
      return make_error("'{}' is not a token id (the vocabulary has {} tokens)",
                        word, vocab.size());
    }
    ids.push_back(static_cast<int32_t>(value));
  }
  return ids;
}

int run_detokenize(const DetokenizeOptions &options) {
  auto vocab = open_vocab(options.model_path);
  if (!vocab.ok())
    return report_error(vocab.error().message);
  std::string joined;
  if (options.ids.empty()) {
    joined = read_stream(stdin);
  } else {
    for (const std::string &id : options.ids)
      joined += id + " ";
  }
  auto ids = parse_ids(joined, *vocab);
  if (!ids.ok())
    return report_error(ids.error().message);
  const std::string text =
      tokenizer::detokenize(*vocab, *ids, options.skip_special);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

} // namespace

CommandRunner add_tokenize_command(CLI::App &app) {
  auto options = std::make_shared<TokenizeOptions>();
  CLI::App *cmd =
      app.add_subcommand("tokenize", "Print the token ids of a text");
  cmd->add_option("-m,--model", options->model_path,
                  "GGUF model or vocabulary file")
      ->required();
  cmd->add_option("-p,--prompt", options->prompt,
                  "Text to tokenize (default: stdin, as bytes)");
  cmd->add_option("-f,--file", options->file, "File whose bytes to tokenize");
  cmd->add_flag("--ids", options->ids_only,
                "Print only the ids, separated by spaces");
  cmd->add_flag("--add-special", options->add_special,
                "Add BOS/EOS as the vocabulary asks");
  cmd->add_flag("--parse-special", options->parse_special,
                "Recognise special token texts such as <|im_end|>");
  cmd->add_flag("--stats", options->stats,
                "Print load and tokenize times to stderr");
  return [options] { return run_tokenize(*options); };
}

CommandRunner add_detokenize_command(CLI::App &app) {
  auto options = std::make_shared<DetokenizeOptions>();
  CLI::App *cmd =
      app.add_subcommand("detokenize", "Print the text of token ids");
  cmd->add_option("-m,--model", options->model_path,
                  "GGUF model or vocabulary file")
      ->required();
  cmd->add_option("ids", options->ids, "Token ids (default: read from stdin)");
  cmd->add_flag("--skip-special", options->skip_special,
                "Drop control tokens (and a leading BOS / trailing EOS) "
                "instead of printing them");
  return [options] { return run_detokenize(*options); };
}

} // namespace moe::cli
