// The io_uring IoEngine (see io_engine.hpp). One ring per file target, shared by every ULT that
// does I/O on it: a ULT submits under the ring's lock, then polls the completion queue (also
// under the lock, handing each completion to the ULT that waits for it) and yields between
// polls, so the execution stream runs the network side of a transfer while the disk works.
// A ring per target rather than per execution stream: simpler, and the lock is held only for
// submission and reaping.

#include <fcntl.h>
#include <liburing.h>

#include <cerrno>
#include <chrono>
#include <mutex>

#include "dango/thread/ult.hpp"
#include "services/blob/io_engine.hpp"

namespace dango::blob {
namespace {

// One operation a ULT waits for.
struct Slot {
  bool done = false;
  int result = 0;
};

class UringEngine final : public IoEngine {
 public:
  explicit UringEngine(int fd) : fd_(fd) {}
  ~UringEngine() override {
    if (ready_) io_uring_queue_exit(&ring_);
  }
  // Sets the ring up in place (liburing keeps pointers into it); 0 or an errno.
  int init(unsigned queue_depth) {
    const int result = io_uring_queue_init(queue_depth, &ring_, 0);
    ready_ = result == 0;
    return -result;
  }
  std::string_view name() const override { return "io_uring"; }

  int write(std::span<const std::byte> data, uint64_t offset) override {
    while (!data.empty()) {
      const int n = run([&](io_uring_sqe* sqe) {
        io_uring_prep_write(sqe, fd_, data.data(), static_cast<unsigned>(chunk(data.size())),
                            offset);
      });
      if (n < 0) return -n;
      if (n == 0) return EIO;
      data = data.subspan(static_cast<size_t>(n));
      offset += static_cast<uint64_t>(n);
    }
    return 0;
  }

  int read(std::span<std::byte> out, uint64_t offset) override {
    while (!out.empty()) {
      const int n = run([&](io_uring_sqe* sqe) {
        io_uring_prep_read(sqe, fd_, out.data(), static_cast<unsigned>(chunk(out.size())), offset);
      });
      if (n < 0) return -n;
      if (n == 0) return EIO;
      out = out.subspan(static_cast<size_t>(n));
      offset += static_cast<uint64_t>(n);
    }
    return 0;
  }

  int sync(uint64_t offset, uint64_t size) override {
    const int n = run([&](io_uring_sqe* sqe) {
      io_uring_prep_fsync(sqe, fd_, IORING_FSYNC_DATASYNC);
      // The kernel syncs [off, off + len); len is 32 bits, and 0 means "to the end".
      sqe->off = offset;
      sqe->len = size <= UINT32_MAX ? static_cast<uint32_t>(size) : 0;
    });
    return n < 0 ? -n : 0;
  }

  int start_writeback(uint64_t offset, uint64_t size) override {
    const int n = run([&](io_uring_sqe* sqe) {
      io_uring_prep_sync_file_range(sqe, fd_, static_cast<unsigned>(chunk(size)), offset,
                                    SYNC_FILE_RANGE_WRITE);
    });
    return n < 0 ? -n : 0;
  }

  int sync_file(int fd) override {
    const int n =
        run([&](io_uring_sqe* sqe) { io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC); });
    return n < 0 ? -n : 0;
  }

 private:
  // Largest single operation: a read or write returns an int.
  static size_t chunk(size_t size) { return std::min<size_t>(size, 1u << 30); }

  template <class Prepare>
  int run(Prepare prepare) {
    Slot slot;
    {
      std::lock_guard lock(mutex_);
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      while (sqe == nullptr) {  // the queue is full: push it to the kernel, then retry
        io_uring_submit(&ring_);
        reap_locked();
        sqe = io_uring_get_sqe(&ring_);
      }
      prepare(sqe);
      io_uring_sqe_set_data(sqe, &slot);
      const int submitted = io_uring_submit(&ring_);
      if (submitted < 0) return submitted;
    }
    // Poll, yielding between polls, for the first kSpin: a page-cache copy completes within
    // microseconds and the execution stream keeps running the network side meanwhile. A ULT
    // timer is no way to wait here (it fires on the progress loop's millisecond epoll timeout,
    // which made a 1 MiB read take milliseconds), so a longer operation (a flush to the device)
    // is then awaited in the kernel, in slices of at most kSlice, with other ULTs run between
    // slices.
    constexpr auto kSpin = std::chrono::microseconds(2000);
    constexpr long long kSliceNs = 500'000;
    const auto spin_until = std::chrono::steady_clock::now() + kSpin;
    for (;;) {
      {
        std::lock_guard lock(mutex_);
        reap_locked();
        if (slot.done) return slot.result;
        if (std::chrono::steady_clock::now() >= spin_until) {
          __kernel_timespec slice{.tv_sec = 0, .tv_nsec = kSliceNs};
          io_uring_cqe* cqe = nullptr;
          io_uring_wait_cqe_timeout(&ring_, &cqe, &slice);
          reap_locked();
          if (slot.done) return slot.result;
        }
      }
      thread::this_ult::yield();
    }
  }

  void reap_locked() {
    io_uring_cqe* cqe = nullptr;
    while (io_uring_peek_cqe(&ring_, &cqe) == 0 && cqe != nullptr) {
      auto* done = static_cast<Slot*>(io_uring_cqe_get_data(cqe));
      done->result = cqe->res;
      done->done = true;
      io_uring_cqe_seen(&ring_, cqe);
    }
  }

  int fd_;
  io_uring ring_{};
  bool ready_ = false;
  std::mutex mutex_;  // guards the ring; never held across a yield
};

}  // namespace

std::unique_ptr<IoEngine> make_uring_engine(int fd, unsigned queue_depth, int& error) {
  auto engine = std::make_unique<UringEngine>(fd);
  error = engine->init(queue_depth);
  if (error != 0) return nullptr;
  return engine;
}

}  // namespace dango::blob
