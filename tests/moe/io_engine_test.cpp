// The I/O engine delivers exactly the bytes of the file, O_DIRECT or buffered, reports the end of
// a truncated file and injected read errors, and never loses a request.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <vector>

#include "moe/io_engine.h"

namespace moe::experts {
namespace {

class IoEngineTest : public ::testing::TestWithParam<bool> {
 protected:
  std::string path = (std::filesystem::temp_directory_path() / ("moe-io-" + std::to_string(::getpid()))).string();
  std::vector<uint8_t> bytes;
  void SetUp() override {
    bytes.resize(5 * kDirectAlign + 1000);  // ends mid-block, like most model files
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 7 + i / 4096);
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  void TearDown() override { std::remove(path.c_str()); }
};

// Completions collected from the I/O thread.
struct Collector {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<std::pair<uint64_t, Status>> done;
  void add(ReadRequest& r, const Status& s) {
    std::lock_guard<std::mutex> lock(mutex);
    done.emplace_back(r.tag, s);
    cv.notify_all();
  }
  void wait_for(size_t n) {
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait(lock, [&] { return done.size() >= n; });
  }
};

uint8_t* aligned_buffer(size_t n) {
  void* p = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : static_cast<uint8_t*>(p);
}

TEST_P(IoEngineTest, ReadsRangesUpToTheEndOfTheFile) {
  Collector c;
  IoEngineOptions options;
  options.queue_depth = 2;  // fewer than the requests: the rest wait their turn
  options.allow_direct = GetParam();
  auto engine = IoEngine::open(path, options, [&](ReadRequest& r, const Status& s) { c.add(r, s); });
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  const size_t n = 6 * kDirectAlign;
  uint8_t* buffer = aligned_buffer(n * 3);
  ASSERT_NE(buffer, nullptr);
  // Whole blocks; a range running past the end that needs only what exists; the last partial block.
  std::vector<ReadRequest> requests = {
      {kDirectAlign, buffer, 2 * kDirectAlign, 2 * kDirectAlign, 0, 0},
      {3 * kDirectAlign, buffer + n, 3 * kDirectAlign, 2 * kDirectAlign + 1000, 0, 1},
      {0, buffer + 2 * n, kDirectAlign, 10, 0, 2},
  };
  for (ReadRequest& r : requests) (*engine)->submit(&r);
  c.wait_for(requests.size());
  for (const auto& [tag, status] : c.done) EXPECT_TRUE(status.ok()) << tag << ": " << status.error().message;
  EXPECT_EQ(0, std::memcmp(buffer, bytes.data() + kDirectAlign, 2 * kDirectAlign));
  EXPECT_EQ(0, std::memcmp(buffer + n, bytes.data() + 3 * kDirectAlign, 2 * kDirectAlign + 1000));
  EXPECT_EQ(0, std::memcmp(buffer + 2 * n, bytes.data(), 10));
  engine->reset();
  ::munmap(buffer, n * 3);
}

// Returns the status of one read of `r` through a fresh engine.
Status read_one(const std::string& path, bool direct, int64_t fail_read_at, ReadRequest r) {
  Collector c;
  IoEngineOptions options;
  options.allow_direct = direct;
  options.fail_read_at = fail_read_at;
  auto engine = IoEngine::open(path, options, [&](ReadRequest& done, const Status& s) { c.add(done, s); });
  if (!engine.ok()) return Status(engine.error());
  (*engine)->submit(&r);
  c.wait_for(1);
  return c.done[0].second;
}

TEST_P(IoEngineTest, TruncatedFileAndReadErrorsAreReported) {
  uint8_t* buffer = aligned_buffer(4 * kDirectAlign);
  ASSERT_NE(buffer, nullptr);
  // Needs 1000 bytes more than the file has.
  const Status past_end =
      read_one(path, GetParam(), 0, {3 * kDirectAlign, buffer, 4 * kDirectAlign, 3 * kDirectAlign + 1000, 0, 7});
  ASSERT_FALSE(past_end.ok());
  EXPECT_NE(past_end.error().message.find("truncated"), std::string::npos) << past_end.error().message;
  const Status failing = read_one(path, GetParam(), 1, {0, buffer, kDirectAlign, kDirectAlign, 0, 8});
  ASSERT_FALSE(failing.ok());
  EXPECT_NE(failing.error().message.find("Input/output error"), std::string::npos);
  EXPECT_NE(failing.error().message.find(path), std::string::npos);
  ::munmap(buffer, 4 * kDirectAlign);
}

TEST(IoEngine, MissingFileIsAnError) {
  auto engine = IoEngine::open("/nonexistent/model.gguf", {}, [](ReadRequest&, const Status&) {});
  ASSERT_FALSE(engine.ok());
  EXPECT_NE(engine.error().message.find("/nonexistent/model.gguf"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(DirectAndBuffered, IoEngineTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "direct" : "buffered"; });

}  // namespace
}  // namespace moe::experts
