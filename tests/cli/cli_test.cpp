// End-to-end tests of the `moe` binary: real processes, real files, exit codes and the
// stdout/stderr contract scripts depend on.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cctype>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "kernels/tile_int8.h"
#include "../cli_runner.h"

namespace {

using moe::test::CommandResult;
using moe::test::slurp;

std::string temp_path(const std::string& name) { return moe::test::temp_path_for("moe-cli", name); }

// Returns the integer that follows `label` in `text` (e.g. "vocab " in inspect's summary), or -1.
long long number_after(const std::string& text, const std::string& label) {
  const size_t at = text.find(label);
  if (at == std::string::npos) return -1;
  size_t end = at + label.size();
  while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
  if (end == at + label.size()) return -1;
  return std::stoll(text.substr(at + label.size(), end - at - label.size()));
}

CommandResult moe(const std::string& args, const std::string& stdin_path = "/dev/null") {
  return moe::test::run_moe(MOE_CLI_PATH, args, stdin_path);
}

class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = new std::string(temp_path("tiny-moe.gguf"));
    const CommandResult r = moe("gen --preset tiny-moe --type q8_0 --seed 3 -q -o " + *model_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() {
    std::remove(model_->c_str());
    delete model_;
  }
  static std::string* model_;
};
std::string* Cli::model_ = nullptr;

TEST_F(Cli, RunPrintsOnlyGeneratedTextOnStdoutAndTimingsOnStderr) {
  const CommandResult r = moe("run -m " + *model_ + " -p 'Hello there' -n 16 --temp 0 --ignore-eos -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
  EXPECT_EQ(r.out.find("Hello there"), std::string::npos) << "prompt must not be echoed by default";
  EXPECT_NE(r.err.find("generation: 16 tokens"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tokens/s"), std::string::npos);
}

TEST_F(Cli, GreedyRunIsReproducibleAndThreadCountIndependent) {
  const std::string args = " -p 'Once upon a time' -n 24 --temp 0 --ignore-eos";
  const CommandResult a = moe("run -m " + *model_ + args + " -t 1");
  const CommandResult b = moe("run -m " + *model_ + args + " -t 2");
  ASSERT_EQ(a.exit_code, 0);
  ASSERT_EQ(b.exit_code, 0);
  EXPECT_EQ(a.out, b.out);
}

TEST_F(Cli, SeededSamplingIsReproducible) {
  const std::string args = " -p 'abc' -n 24 --temp 1.0 --top-k 0 --top-p 1 --min-p 0 --ignore-eos";
  const CommandResult a = moe("run -m " + *model_ + args + " --seed 7");
  const CommandResult b = moe("run -m " + *model_ + args + " --seed 7");
  const CommandResult c = moe("run -m " + *model_ + args + " --seed 8");
  ASSERT_EQ(a.exit_code, 0);
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out);
}

TEST_F(Cli, ChatAnswersEachLineOfStdinAndReusesTheCache) {
  const std::string input = temp_path("chat.txt");
  std::ofstream(input) << "Hello\nHow are you?\n/exit\nnever read\n";
  const CommandResult r = moe("run -m " + *model_ + " --chat --system 'Be brief' -n 8 --temp 0", input);
  std::remove(input.c_str());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Two turns answered, each ending in a newline (a random model may print more); the prompt
  // markers go to stderr: one per turn read, plus the one answered by /exit.
  EXPECT_GE(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '>'), 3) << r.err;
}

TEST_F(Cli, EchoPrintsThePrompt) {
  const CommandResult r = moe("run -m " + *model_ + " -p 'Hello' -n 4 --temp 0 --echo");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("Hello", 0), 0u);
}

TEST_F(Cli, PromptFromFileAndLogitsOut) {
  const std::string prompt = temp_path("prompt.txt"), logits = temp_path("logits.bin");
  std::ofstream(prompt) << "The quick brown fox";
  const CommandResult r = moe("run -m " + *model_ + " -f " + prompt + " -n 1 --temp 0 --logits-out " + logits);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // One f32 per vocabulary entry (the built-in vocabulary).
  const CommandResult info = moe("inspect -m " + *model_ + " --no-tensors");
  const long long n_vocab = number_after(info.out, "vocab ");
  ASSERT_GT(n_vocab, 0) << info.out;
  EXPECT_EQ(std::filesystem::file_size(logits), static_cast<uintmax_t>(n_vocab) * 4);
  std::remove(prompt.c_str());
  std::remove(logits.c_str());
}

TEST_F(Cli, ErrorsExitNonZeroWithAMessage) {
  CommandResult r = moe("run -m /nonexistent/model.gguf -p hi");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("/nonexistent/model.gguf"), std::string::npos) << r.err;
  r = moe("run -m " + *model_ + " -p hi --ctk q3");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("unsupported cache type 'q3'"), std::string::npos) << r.err;
  r = moe("run -m " + *model_ + " -p 'a prompt longer than the context' -c 4 -n 8");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("context is full"), std::string::npos) << r.err;
  // A prompt that fits but leaves no room stops generation cleanly instead.
  r = moe("run -m " + *model_ + " -p hi -c 3 -n 8 --ignore-eos");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("stopped by context"), std::string::npos) << r.err;
  r = moe("run -p hi");
  EXPECT_NE(r.exit_code, 0);
  r = moe("frobnicate");
  EXPECT_NE(r.exit_code, 0);
  r = moe("gen --preset nope -o " + temp_path("never.gguf"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("unknown preset 'nope'"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(temp_path("never.gguf")));
}

TEST_F(Cli, NotAGgufFileIsAClearError) {
  const std::string junk = temp_path("junk.gguf");
  std::ofstream(junk) << "this is not a model";
  const CommandResult r = moe("run -m " + junk + " -p hi");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("moe: error:"), std::string::npos) << r.err;
  std::remove(junk.c_str());
}

TEST(CliGen, SameSeedWritesIdenticalFiles) {
  const std::string a = temp_path("gen-a.gguf"), b = temp_path("gen-b.gguf");
  ASSERT_EQ(moe("gen --preset tiny --type q4_0 --seed 9 -q -t 1 -o " + a).exit_code, 0);
  ASSERT_EQ(moe("gen --preset tiny --type q4_0 --seed 9 -q -t 2 -o " + b).exit_code, 0);
  EXPECT_EQ(slurp(a), slurp(b));
  std::remove(a.c_str());
  std::remove(b.c_str());
}

// The hand count for the Mixtral-shaped preset (8 layers, n_embd 1024, 8 heads / 2 KV heads of
// 128, n_ff 2816, 8 experts, top-2):
//   attention per layer: q 1024*1024 + k 1024*256 + v 1024*256 + o 1024*1024 = 2,621,440
//   norms per layer 2,048; router 8,192; one expert 3*1024*2816 = 8,650,752 (x8 = 69,206,016)
//   per layer 71,837,696; 8 layers 574,701,568; plus 2*1024*n_vocab embeddings/output + 1,024
//   active = total - 8 layers * 6 unused experts * 8,650,752 = total - 415,236,096
TEST(CliInspect, MixtralShapedParameterCountsMatchHandCount) {
  const std::string path = temp_path("mixtral.gguf");
  ASSERT_EQ(moe("gen --preset mixtral-shaped --type q4_0 -q -o " + path).exit_code, 0);
  const CommandResult r = moe("inspect -m " + path + " --no-tensors");
  std::remove(path.c_str());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const long long n_vocab = number_after(r.out, "vocab ");
  ASSERT_GT(n_vocab, 0) << r.out;
  const long long total = 574701568LL + 2 * 1024 * n_vocab + 1024;
  EXPECT_NE(r.out.find("total " + std::to_string(total) + " "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("active per token " + std::to_string(total - 415236096LL) + " "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("MoE: 8 experts, top-2"), std::string::npos) << r.out;
}

}  // namespace

namespace {

TEST(CliBench, JsonHasLlamaBenchFieldsPerTest) {
  const std::string path = temp_path("bench.gguf");
  ASSERT_EQ(moe("gen --preset tiny-moe --type q8_0 -q -o " + path).exit_code, 0);
  const CommandResult r = moe("bench -m " + path + " -p 16 -n 4 -t 1,2 -r 2 -o json --no-bandwidth");
  std::remove(path.c_str());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // One record per (threads, test): pp16 and tg4 at 1 and 2 threads, llama-bench's field names.
  for (const char* field : {"\"n_prompt\": 16", "\"n_gen\": 4", "\"n_threads\": 2", "\"avg_ts\"", "\"stddev_ts\""}) {
    EXPECT_NE(r.out.find(field), std::string::npos) << field << "\n" << r.out;
  }
  size_t records = 0;
  for (size_t at = r.out.find("\"avg_ts\""); at != std::string::npos; at = r.out.find("\"avg_ts\"", at + 1)) ++records;
  EXPECT_EQ(records, 4u);
}

// --amx moves prompt products to the tile unit: other logits (bf16 activations), the same
// length; bench says which kernels ran. Without AMX-BF16 the flag warns and changes nothing.
TEST(CliRun, AmxFlagSwitchesThePrefillKernels) {
  const std::string path = temp_path("amx.gguf"), exact = temp_path("exact.bin"), tiles = temp_path("tiles.bin");
  ASSERT_EQ(moe("gen --preset small-moe --type q4_0 -q -o " + path).exit_code, 0);
  const std::string prompt = " -p 'The quick brown fox jumps over the lazy dog' -n 0 --temp 0 --logits-out ";
  const CommandResult a = moe("run -m " + path + prompt + exact);
  const CommandResult b = moe("run --amx -m " + path + prompt + tiles);
  const CommandResult bench = moe("bench --amx -m " + path + " -p 16 -n 0 -r 1 --no-bandwidth");
  std::remove(path.c_str());
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  ASSERT_EQ(bench.exit_code, 0) << bench.err;
  ASSERT_EQ(slurp(exact).size(), slurp(tiles).size());
  if (b.err.find("no AMX-BF16") != std::string::npos) {
    EXPECT_EQ(slurp(exact), slurp(tiles));
    EXPECT_NE(bench.out.find("prefill kernels: int8"), std::string::npos) << bench.out;
  } else {
    EXPECT_NE(slurp(exact), slurp(tiles));
    EXPECT_NE(bench.out.find("prefill kernels: AMX-BF16"), std::string::npos) << bench.out;
  }
  std::remove(exact.c_str());
  std::remove(tiles.c_str());
}

// Batches of Q8_0 / Q4_K / Q6_K weights go to the AMX-INT8 tile unit by default where the CPU has
// one; --exact (or MOE_INT8_TILES=0) keeps every product on the dot kernels, and bench says which.
TEST(CliRun, ExactFlagKeepsTheDotKernels) {
  const std::string path = temp_path("exact.gguf"), flag = temp_path("flag.bin"), env = temp_path("env.bin");
  ASSERT_EQ(moe("gen --preset small-moe --type q8_0 -q -o " + path).exit_code, 0);
  const std::string prompt = " -p 'The quick brown fox jumps over the lazy dog' -n 0 --temp 0 --logits-out ";
  const CommandResult by_flag = moe("run --exact -m " + path + prompt + flag);
  setenv("MOE_INT8_TILES", "0", 1);
  const CommandResult by_env = moe("run -m " + path + prompt + env);
  unsetenv("MOE_INT8_TILES");
  const CommandResult bench_default = moe("bench -m " + path + " -p 16 -n 0 -r 1 --no-bandwidth");
  const CommandResult bench_exact = moe("bench --exact -m " + path + " -p 16 -n 0 -r 1 --no-bandwidth");
  std::remove(path.c_str());
  ASSERT_EQ(by_flag.exit_code, 0) << by_flag.err;
  ASSERT_EQ(by_env.exit_code, 0) << by_env.err;
  ASSERT_EQ(bench_default.exit_code, 0) << bench_default.err;
  ASSERT_EQ(bench_exact.exit_code, 0) << bench_exact.err;
  EXPECT_FALSE(slurp(flag).empty());
  EXPECT_EQ(slurp(flag), slurp(env));
  EXPECT_NE(bench_exact.out.find("prefill kernels: int8/fp32 dot kernels"), std::string::npos) << bench_exact.out;
  const char* expected = moe::kernels::int8_tiles::available() ? "prefill kernels: AMX-INT8" : "prefill kernels: int8/fp32";
  EXPECT_NE(bench_default.out.find(expected), std::string::npos) << bench_default.out;
  std::remove(flag.c_str());
  std::remove(env.c_str());
}

TEST(CliBench, BadListsAreErrors) {
  const CommandResult r = moe("bench -m /nonexistent.gguf -p 1,x");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("-p: 'x' is not a non-negative integer"), std::string::npos) << r.err;
}

}  // namespace

namespace {

TEST(CliExperts, TableCoversEveryLayerAndSharesSumToOneHundred) {
  const std::string path = temp_path("experts.gguf"), svg = temp_path("experts.svg");
  ASSERT_EQ(moe("gen --preset small-moe --type q8_0 -q -o " + path).exit_code, 0);
  const CommandResult r = moe("experts -m " + path + " -p 'The quick brown fox jumps over the lazy dog' -c 8 --svg " + svg);
  std::remove(path.c_str());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // small-moe: 4 MoE layers of 8 experts; each line's shares add up to 100%.
  std::istringstream lines(r.out);
  int layers = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("L", 0) != 0) continue;
    ++layers;
    std::istringstream shares(line.substr(line.find('[') + 1));
    double total = 0, v = 0;
    for (int e = 0; e < 8 && shares >> v; ++e) total += v;
    EXPECT_NEAR(total, 100.0, 0.5) << line;
  }
  EXPECT_EQ(layers, 4) << r.out;
  EXPECT_NE(slurp(svg).find("<svg"), std::string::npos);
  std::remove(svg.c_str());
}

TEST(CliExperts, DenseModelIsAClearError) {
  const std::string path = temp_path("dense.gguf");
  ASSERT_EQ(moe("gen --preset tiny -q -o " + path).exit_code, 0);
  const CommandResult r = moe("experts -m " + path + " -p hello");
  std::remove(path.c_str());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("no routed experts"), std::string::npos) << r.err;
}

}  // namespace

namespace {

// The README's main command runs the committed default model; it must load and generate.
TEST(CliDefaultModel, TrainedDefaultModelGeneratesText) {
  const std::string model = std::string(MOE_SOURCE_DIR) + "/models/kjv-moe-q8_0.gguf";
  ASSERT_TRUE(std::filesystem::exists(model)) << model;
  const CommandResult r = moe("run -m " + model + " -p 'In the beginning' -n 24 --temp 0 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GE(r.out.size(), 24u) << r.out;
  const CommandResult info = moe("inspect -m " + model + " --no-tensors");
  EXPECT_NE(info.out.find("MoE: 4 experts, top-2"), std::string::npos) << info.out;
}

}  // namespace
