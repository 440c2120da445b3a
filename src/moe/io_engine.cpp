#include "moe/io_engine.h"

#include <fcntl.h>
#include <liburing.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/check.h"

namespace moe::experts {

namespace {

// user_data of the no-op that wakes the I/O thread to stop.
constexpr uint64_t kWakeUp = 0;

}  // namespace

Result<std::unique_ptr<IoEngine>> IoEngine::open(const std::string& path, const IoEngineOptions& options,
                                                 Completion on_complete) {
  auto engine = std::unique_ptr<IoEngine>(new IoEngine());
  engine->path_ = path;
  engine->options_ = options;
  engine->on_complete_ = std::move(on_complete);
  // O_DIRECT keeps expert bytes out of the page cache (in a memory-limited cgroup the page cache
  // is charged to us and would compete with the expert cache); tmpfs and some others refuse it.
  engine->fd_ = options.allow_direct ? ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT) : -1;
  engine->direct_ = engine->fd_ >= 0;
  if (engine->fd_ < 0) engine->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (engine->fd_ < 0) return make_error("cannot open '{}' for expert reads: {}", path, std::strerror(errno));
  engine->ring_ = std::make_unique<io_uring>();
  const unsigned depth = std::max(1u, options.queue_depth);
  engine->options_.queue_depth = depth;
  // Room for every read in flight plus the wake-up no-op.
  if (const int rc = io_uring_queue_init(depth + 1, engine->ring_.get(), 0); rc < 0) {
    ::close(engine->fd_);
    engine->fd_ = -1;
    engine->ring_.reset();
    return make_error("cannot set up io_uring for '{}': {}", path, std::strerror(-rc));
  }
  engine->thread_ = std::thread([e = engine.get()] { e->run(); });
  return engine;
}

IoEngine::~IoEngine() {
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(ring_mutex_);
      stopping_ = true;
      queue_.clear();  // never started: nothing writes into their buffers
      io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
      MOE_CHECK(sqe != nullptr);  // the ring keeps one entry free for this
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data64(sqe, kWakeUp);
      io_uring_submit(ring_.get());
    }
    thread_.join();
  }
  if (ring_) io_uring_queue_exit(ring_.get());
  if (fd_ >= 0) ::close(fd_);
}

void IoEngine::submit(ReadRequest* request) {
  std::lock_guard<std::mutex> lock(ring_mutex_);
  queue_.push_back(request);
  fill_ring_locked();
}

void IoEngine::fill_ring_locked() {
  bool added = false;
  while (!queue_.empty() && in_flight_ < options_.queue_depth) {
    io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
    if (sqe == nullptr) break;
    ReadRequest* r = queue_.front();
    queue_.pop_front();
    io_uring_prep_read(sqe, fd_, r->buffer + r->done, static_cast<unsigned>(r->length - r->done), r->offset + r->done);
    io_uring_sqe_set_data(sqe, r);
    ++in_flight_;
    added = true;
  }
  if (added) io_uring_submit(ring_.get());
}

void IoEngine::run() {
  for (;;) {
    io_uring_cqe* cqe = nullptr;
    const int rc = io_uring_wait_cqe(ring_.get(), &cqe);
    if (rc == -EINTR) continue;
    MOE_CHECK_MSG(rc == 0, "io_uring_wait_cqe failed");
    const uint64_t data = io_uring_cqe_get_data64(cqe);
    const int result = cqe->res;
    io_uring_cqe_seen(ring_.get(), cqe);
    if (data != kWakeUp) handle_completion(reinterpret_cast<ReadRequest*>(data), result);
    std::lock_guard<std::mutex> lock(ring_mutex_);
    if (stopping_ && in_flight_ == 0) return;
  }
}

void IoEngine::handle_completion(ReadRequest* r, int result) {
  {
    std::lock_guard<std::mutex> lock(ring_mutex_);
    --in_flight_;
  }
  ++completed_;
  if (options_.fail_read_at > 0 && completed_ == options_.fail_read_at) result = -EIO;
  Status status;
  if (result < 0) {
    status = make_error("reading '{}' at offset {} ({} bytes) failed: {}", path_, r->offset + r->done,
                        r->length - r->done, std::strerror(-result));
  } else if (result == 0 && r->done < r->needed) {
    status = make_error("'{}' ends before offset {}: the model file was truncated", path_, r->offset + r->needed);
  } else {
    r->done += static_cast<uint64_t>(result);
    if (r->done < r->needed) {  // a short read: ask for the rest
      std::lock_guard<std::mutex> lock(ring_mutex_);
      if (!stopping_) {
        queue_.push_front(r);
        fill_ring_locked();
      }
      return;
    }
  }
  // Buffered reads (no O_DIRECT here): drop what they left in the page cache.
  if (!direct_) ::posix_fadvise(fd_, static_cast<off_t>(r->offset), static_cast<off_t>(r->done), POSIX_FADV_DONTNEED);
  on_complete_(*r, status);
  std::lock_guard<std::mutex> lock(ring_mutex_);
  fill_ring_locked();
}

}  // namespace moe::experts
