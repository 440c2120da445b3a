// `moe quantize` and `moe quant-error` end to end: a quantized file that `moe run` loads, the
// RMSE report, and every kind of bad input ending in a clear error and exit status 1, with no
// output file left behind.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "../cli_runner.h"

namespace {

using moe::test::CommandResult;
using moe::test::slurp;

std::string temp_path(const std::string& name) { return moe::test::temp_path_for("moe-quant-cli", name); }

CommandResult moe(const std::string& args) { return moe::test::run_moe(MOE_CLI_PATH, args); }

class QuantizeCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    f32_ = new std::string(temp_path("small-f32.gguf"));
    q8_ = new std::string(temp_path("small-q8.gguf"));
    ASSERT_EQ(moe("gen --preset small-moe --n-layer 2 --type f32 --seed 4 -q -o " + *f32_).exit_code, 0);
    ASSERT_EQ(moe("gen --preset small-moe --n-layer 2 --type q8_0 --seed 4 -q -o " + *q8_).exit_code, 0);
  }
  static void TearDownTestSuite() {
    std::remove(f32_->c_str());
    std::remove(q8_->c_str());
    delete f32_;
    delete q8_;
  }
  void TearDown() override { std::remove(out_.c_str()); }

  // Expects exit status 1, `message` in stderr, and no output file.
  void expect_failure(const std::string& args, const std::string& message) {
    const CommandResult r = moe(args);
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.err;
    EXPECT_NE(r.err.find("moe: error: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << args << "\n" << r.err;
    EXPECT_FALSE(std::filesystem::exists(out_)) << args;
  }

  static std::string* f32_;
  static std::string* q8_;
  std::string out_ = temp_path("out.gguf");
};
std::string* QuantizeCli::f32_ = nullptr;
std::string* QuantizeCli::q8_ = nullptr;

TEST_F(QuantizeCli, Q4KMLoadsAndReportsRmse) {
  const CommandResult r = moe("quantize " + *f32_ + " " + out_ + " q4_k_m --rmse -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("re-loaded as a model"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("blk.1.ffn_down_exps.weight"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("q6_K"), std::string::npos);
  EXPECT_EQ(r.out.find("ffn_gate_inp"), std::string::npos);  // unchanged tensors are not listed
  const CommandResult run = moe("run -m " + out_ + " -p hello -n 4 --temp 0 -t 2");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  const CommandResult err = moe("quant-error " + *f32_ + " " + out_);
  ASSERT_EQ(err.exit_code, 0) << err.err;
  EXPECT_NE(err.out.find("mean relative rmse"), std::string::npos);
}

TEST_F(QuantizeCli, OverridesAndDryRun) {
  const CommandResult dry = moe("quantize " + *f32_ + " " + out_ + " Q4_K_M --dry-run --type-for 'ffn_up_exps=q8_0' "
                                "--type-for 'attn_q=iq4_nl'");
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_FALSE(std::filesystem::exists(out_));
  EXPECT_NE(dry.err.find("blk.0.ffn_up_exps.weight"), std::string::npos);
  EXPECT_NE(dry.err.find("--type-for 'ffn_up_exps=q8_0'"), std::string::npos) << dry.err;
  EXPECT_NE(dry.err.find("-> iq4_nl"), std::string::npos) << dry.err;
}

TEST_F(QuantizeCli, RequantizeNeedsTheFlag) {
  expect_failure("quantize " + *q8_ + " " + out_ + " q4_k_m", "--allow-requantize");
  const CommandResult r = moe("quantize " + *q8_ + " " + out_ + " q4_k_m --allow-requantize -q");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(QuantizeCli, BadInputIsAClearError) {
  expect_failure("quantize " + *f32_ + " " + out_ + " q9_0", "unknown quantization type 'q9_0'");
  expect_failure("quantize " + *f32_ + " " + out_ + " q4_k_m --type-for 'ffn_(=q4_0'", "bad regex");
  expect_failure("quantize " + *f32_ + " " + out_ + " q4_k_m --type-for ffn_down", "expected REGEX=TYPE");
  expect_failure("quantize " + *f32_ + " " + out_ + " q4_k_m --type-for ffn_down=q8_K", "not a weight type");
  expect_failure("quantize /nonexistent/in.gguf " + out_ + " q8_0", "/nonexistent/in.gguf");
  // A file that is not GGUF, and a model cut short.
  const std::string junk = temp_path("junk.gguf"), cut = temp_path("cut.gguf");
  std::ofstream(junk, std::ios::binary) << "this is not a gguf file at all, just some bytes";
  std::filesystem::copy_file(*f32_, cut, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::resize_file(cut, std::filesystem::file_size(cut) / 2);
  expect_failure("quantize " + junk + " " + out_ + " q8_0", junk);
  expect_failure("quantize " + cut + " " + out_ + " q8_0", cut);
  std::remove(junk.c_str());
  std::remove(cut.c_str());
}

TEST_F(QuantizeCli, UnwritableOutputIsAClearError) {
  expect_failure("quantize " + *f32_ + " /nonexistent-dir/out.gguf q8_0", "cannot create");
  expect_failure("quantize " + *f32_ + " " + *f32_ + " q8_0", "is the input file");
  EXPECT_TRUE(std::filesystem::exists(*f32_));
}

TEST_F(QuantizeCli, QuantErrorNeedsMatchingFiles) {
  const std::string tiny = temp_path("tiny.gguf");
  ASSERT_EQ(moe("gen --preset tiny-moe -q -o " + tiny).exit_code, 0);
  const CommandResult r = moe("quant-error " + *f32_ + " " + tiny);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("moe: error: "), std::string::npos) << r.err;
  std::remove(tiny.c_str());
}

}  // namespace
