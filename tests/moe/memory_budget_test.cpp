// Sizes parse as documented; the cgroup (v1 and v2) and meminfo limits are read correctly.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "moe/memory_budget.h"

namespace moe::experts {
namespace {

TEST(ParseSize, UnitsArePowersOf1024) {
  EXPECT_EQ(*parse_size("4096"), 4096u);
  EXPECT_EQ(*parse_size("512M"), 512ull << 20);
  EXPECT_EQ(*parse_size("2G"), 2ull << 30);
  EXPECT_EQ(*parse_size("2GiB"), 2ull << 30);
  EXPECT_EQ(*parse_size("1.5g"), 3ull << 29);
  EXPECT_EQ(*parse_size("64kb"), 64ull << 10);
  EXPECT_EQ(*parse_size("1T"), 1ull << 40);
}

TEST(ParseSize, BadTextIsAnError) {
  for (const char* text : {"", "G", "-1G", "2X", "0", "1.2.3M"}) {
    auto r = parse_size(text);
    EXPECT_FALSE(r.ok()) << text;
  }
}

class FakeFs : public ::testing::Test {
 protected:
  std::filesystem::path root = std::filesystem::temp_directory_path() / ("moe-cgroup-" + std::to_string(::getpid()));
  void SetUp() override { std::filesystem::create_directories(root); }
  void TearDown() override { std::filesystem::remove_all(root); }
  void write(const std::string& rel, const std::string& text) {
    std::filesystem::create_directories((root / rel).parent_path());
    std::ofstream(root / rel) << text;
  }
};

TEST_F(FakeFs, CgroupV1TakesTheTightestLimitUpTheTree) {
  write("proc_cgroup", "9:pids:/\n4:memory:/bench/one\n0::/\n");
  write("sys/memory/bench/one/memory.limit_in_bytes", "9223372036854771712\n");  // unlimited
  write("sys/memory/bench/memory.limit_in_bytes", "2147483648\n");
  write("sys/memory/memory.limit_in_bytes", "9223372036854771712\n");
  EXPECT_EQ(cgroup_memory_limit((root / "proc_cgroup").string(), (root / "sys").string()), 2147483648ull);
}

TEST_F(FakeFs, CgroupV2ReadsMemoryMax) {
  write("proc_cgroup", "0::/user/job\n");
  write("sys/user/job/memory.max", "1073741824\n");
  write("sys/user/memory.max", "max\n");
  EXPECT_EQ(cgroup_memory_limit((root / "proc_cgroup").string(), (root / "sys").string()), 1073741824ull);
  write("sys/user/job/memory.max", "max\n");
  EXPECT_FALSE(cgroup_memory_limit((root / "proc_cgroup").string(), (root / "sys").string()).has_value());
}

TEST_F(FakeFs, MemAvailableFromMeminfo) {
  write("meminfo", "MemTotal:       24000000 kB\nMemFree:        1000 kB\nMemAvailable:   2000000 kB\n");
  EXPECT_EQ(mem_available((root / "meminfo").string()), 2000000ull * 1024);
  write("meminfo", "MemTotal: 5 kB\n");
  EXPECT_FALSE(mem_available((root / "meminfo").string()).has_value());
}

TEST(DefaultBudget, IsBelowWhatTheMachineHas) {
  auto budget = default_memory_budget();
  ASSERT_TRUE(budget.ok()) << budget.error().message;
  auto available = mem_available();
  ASSERT_TRUE(available.has_value());
  EXPECT_LT(*budget, *available);
}

}  // namespace
}  // namespace moe::experts
