// `moe tokenize` / `moe detokenize` end to end on vocabulary-only GGUF files
// from
// ../shared/testdata (skipped when absent): exact-bytes input, output formats,
// special tokens.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string temp_path(const std::string &name) {
  return (std::filesystem::temp_directory_path() /
          ("moe-tok-cli-" + std::to_string(::getpid()) + "-" + name))
      .string();
}

std::string slurp(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const std::string &path, const std::string &bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// Runs `moe <args>` with stdin from `input` (bytes) and stdout / stderr
// captured to files.
CommandResult moe(const std::string &args, const std::string &input = "") {
  const std::string in = temp_path("stdin"), out = temp_path("stdout"),
                    err = temp_path("stderr");
  write_file(in, input);
  const std::string cmd = std::string(MOE_CLI_PATH) + " " + args + " <" + in +
                          " >" + out + " 2>" + err;
  const int status = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  for (const std::string &path : {in, out, err})
    std::remove(path.c_str());
  return r;
}

class TokenizeCli : public ::testing::Test {
protected:
  void SetUp() override {
    const std::filesystem::path dir =
        std::filesystem::path(MOE_TESTDATA_DIR) / "vocab";
    qwen2_ = (dir / "ggml-vocab-qwen2.gguf").string();
    llama3_ = (dir / "ggml-vocab-llama-bpe.gguf").string();
    spm_ = (dir / "ggml-vocab-llama-spm.gguf").string();
    if (!std::filesystem::exists(qwen2_) || !std::filesystem::exists(llama3_) ||
        !std::filesystem::exists(spm_)) {
      GTEST_SKIP() << "shared test data not found in " << dir
                   << " (MOE_TESTDATA_DIR)";
    }
  }
  std::string qwen2_, llama3_, spm_;
};

TEST_F(TokenizeCli, IdsFromPromptFileAndStdinAgree) {
  // Reference ids for "Hello world" (ggml-vocab-qwen2.gguf.out).
  const CommandResult prompt =
      moe("tokenize -m " + qwen2_ + " --ids -p 'Hello world'");
  ASSERT_EQ(prompt.exit_code, 0) << prompt.err;
  EXPECT_EQ(prompt.out, "9707 1879\n");
  const std::string file = temp_path("input.txt");
  write_file(file, "Hello world");
  const CommandResult from_file =
      moe("tokenize -m " + qwen2_ + " --ids -f " + file);
  std::remove(file.c_str());
  EXPECT_EQ(from_file.out, prompt.out);
  EXPECT_EQ(moe("tokenize -m " + qwen2_ + " --ids", "Hello world").out,
            prompt.out);
}

TEST_F(TokenizeCli, StdinIsExactBytes) {
  // A trailing newline is a token of its own; nothing is added or stripped.
  const CommandResult with_newline =
      moe("tokenize -m " + qwen2_ + " --ids", "Hello world\n");
  ASSERT_EQ(with_newline.exit_code, 0) << with_newline.err;
  EXPECT_EQ(with_newline.out, "9707 1879 198\n");
  EXPECT_EQ(moe("tokenize -m " + qwen2_ + " --ids", "").out, "\n");
}

TEST_F(TokenizeCli, DefaultFormatShowsPieces) {
  const CommandResult r = moe("tokenize -m " + qwen2_ + " -p 'Hello world'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "9707 -> 'Hello'\n1879 -> ' world'\n");
}

TEST_F(TokenizeCli, SpecialTokensOnlyOnRequest) {
  // Llama 3 adds BOS 128000 only with --add-special.
  EXPECT_EQ(moe("tokenize -m " + llama3_ + " --ids -p Hi").out, "13347\n");
  EXPECT_EQ(moe("tokenize -m " + llama3_ + " --ids --add-special -p Hi").out,
            "128000 13347\n");
  const std::string text = "'<|im_end|>'";
  const CommandResult literal =
      moe("tokenize -m " + qwen2_ + " --ids -p " + text);
  const CommandResult parsed =
      moe("tokenize -m " + qwen2_ + " --ids --parse-special -p " + text);
  EXPECT_EQ(parsed.out, "151645\n");
  EXPECT_NE(literal.out, parsed.out);
}

TEST_F(TokenizeCli, DetokenizeRoundTripsFromArgsAndStdin) {
  const std::string text = "caf\xc3\xa9 \xf0\x9f\xa6\x99\n  code();";
  const CommandResult ids = moe("tokenize -m " + qwen2_ + " --ids", text);
  ASSERT_EQ(ids.exit_code, 0) << ids.err;
  const CommandResult from_stdin = moe("detokenize -m " + qwen2_, ids.out);
  ASSERT_EQ(from_stdin.exit_code, 0) << from_stdin.err;
  EXPECT_EQ(from_stdin.out, text);
  std::string args = ids.out;
  args.pop_back(); // newline
  EXPECT_EQ(moe("detokenize -m " + qwen2_ + " " + args).out, text);
  // SPM drops the leading space it added; llama-tokenize's "[1, 2]" form is
  // accepted too.
  const CommandResult spm_ids =
      moe("tokenize -m " + spm_ + " --ids -p 'Hello world'");
  EXPECT_EQ(moe("detokenize -m " + spm_, "[" + spm_ids.out + "]").out,
            "Hello world");
}

TEST_F(TokenizeCli, ErrorsAreReportedNotCrashes) {
  const CommandResult bad_id = moe("detokenize -m " + qwen2_ + " 12 abc");
  EXPECT_EQ(bad_id.exit_code, 1);
  EXPECT_NE(bad_id.err.find("'abc' is not a token id"), std::string::npos)
      << bad_id.err;
  const CommandResult range = moe("detokenize -m " + qwen2_ + " 999999");
  EXPECT_EQ(range.exit_code, 1);
  const CommandResult missing = moe("tokenize -m /nonexistent.gguf -p x");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("moe: error:"), std::string::npos);
  const CommandResult both =
      moe("tokenize -m " + qwen2_ + " -p x -f /dev/null");
  EXPECT_EQ(both.exit_code, 1);
}

} // namespace
