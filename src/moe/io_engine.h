// Asynchronous reads of file ranges on one dedicated I/O thread with io_uring: callers queue
// reads and return at once; up to `queue_depth` reads are in flight; completions are delivered
// on the I/O thread. Reads use O_DIRECT when the file system allows it, so expert bytes never
// go through (or stay in) the page cache.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/result.h"

struct io_uring;

namespace moe::experts {

// Offsets, lengths and buffers of O_DIRECT reads are multiples of this.
inline constexpr uint64_t kDirectAlign = 4096;

struct ReadRequest {
  uint64_t offset = 0;  // file offset, kDirectAlign-aligned
  uint8_t* buffer = nullptr;  // kDirectAlign-aligned
  uint64_t length = 0;  // bytes asked for, kDirectAlign-aligned (may run past the end of file)
  uint64_t needed = 0;  // bytes that must arrive; fewer is a truncated file
  uint64_t done = 0;    // bytes arrived so far
  uint64_t tag = 0;     // the caller's
};

struct IoEngineOptions {
  unsigned queue_depth = 32;
  bool allow_direct = true;  // false: buffered reads (what file systems without O_DIRECT get)
  // Test seam: the n-th read to complete (1-based) fails with EIO; 0 never.
  int64_t fail_read_at = 0;
};

class IoEngine {
 public:
  // Called on the I/O thread when a request finished: ok, or an error naming the file range.
  using Completion = std::function<void(ReadRequest& request, const Status& status)>;

  // Opens `path` for reading and starts the I/O thread.
  static Result<std::unique_ptr<IoEngine>> open(const std::string& path, const IoEngineOptions& options,
                                                Completion on_complete);
  ~IoEngine();
  IoEngine(const IoEngine&) = delete;
  IoEngine& operator=(const IoEngine&) = delete;

  // Queues `request` (kept alive by the caller until its completion ran).
  void submit(ReadRequest* request);
  bool direct() const { return direct_; }

 private:
  IoEngine() = default;
  void run();
  // Pushes queued requests into the ring while fewer than queue_depth are in flight; holds ring_mutex_.
  void fill_ring_locked();
  void handle_completion(ReadRequest* request, int result);

  std::string path_;
  int fd_ = -1;
  bool direct_ = false;
  IoEngineOptions options_;
  Completion on_complete_;
  std::unique_ptr<io_uring> ring_;
  std::mutex ring_mutex_;            // guards the submission side, queue_ and in_flight_
  std::deque<ReadRequest*> queue_;   // waiting for room in the ring
  unsigned in_flight_ = 0;
  bool stopping_ = false;
  int64_t completed_ = 0;            // I/O thread only
  std::thread thread_;
};

}  // namespace moe::experts
