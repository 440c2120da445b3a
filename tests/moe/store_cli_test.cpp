// `moe run` with the expert store: the same greedy text as without it under the smallest budget
// it accepts, --stats output, and a clean exit for a budget below the resident part.
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

std::string temp_path(const std::string& name) { return moe::test::temp_path_for("moe-store-cli", name); }

CommandResult moe(const std::string& args) { return moe::test::run_moe(MOE_CLI_PATH, args); }

class StoreCli : public ::testing::Test {
 protected:
  void SetUp() override {
    const CommandResult r = moe("gen --arch olmoe --preset small-moe --type q4_K --seed 5 -q -o " + model_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  void TearDown() override { std::remove(model_.c_str()); }
  std::string model_ = temp_path("small-moe.gguf");
};

TEST_F(StoreCli, BudgetBelowTheResidentPartIsACleanError) {
  const CommandResult r = moe("run -m " + model_ + " -p hi -n 4 --mem-budget 1M");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("moe: error: memory budget 1.0 MiB is too small"), std::string::npos) << r.err;
  const CommandResult bad = moe("run -m " + model_ + " -p hi -n 4 --mem-budget 12Q");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("unknown unit"), std::string::npos) << bad.err;
}

TEST_F(StoreCli, SmallestBudgetGivesTheSameGreedyText) {
  // The error for a too-small budget names the smallest one accepted ("give at least 70.1 MiB").
  const CommandResult probe = moe("run -m " + model_ + " -p hi -n 4 --expert-store on --mem-budget 1M");
  const size_t at = probe.err.find("give at least ");
  ASSERT_NE(at, std::string::npos) << probe.err;
  const double mib = std::stod(probe.err.substr(at + 14));
  const std::string budget = std::to_string(static_cast<long long>((mib + 0.1) * 1048576.0));

  const std::string args = " -p 'The expert store' -n 24 --temp 0 --ignore-eos -t 2";
  const CommandResult plain = moe("run -m " + model_ + args + " --expert-store off");
  const CommandResult stored = moe("run -m " + model_ + args + " --expert-store on --stats --mem-budget " + budget);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  ASSERT_EQ(stored.exit_code, 0) << stored.err;
  EXPECT_EQ(plain.out, stored.out);
  EXPECT_NE(stored.err.find("expert store: "), std::string::npos) << stored.err;
  EXPECT_NE(stored.err.find("evictions"), std::string::npos);
  EXPECT_EQ(stored.err.find(" 0 evictions"), std::string::npos) << stored.err;
}

}  // namespace
