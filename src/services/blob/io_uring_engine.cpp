// The io_uring IoEngine (see io_engine.hpp). One ring per file target, shared by every ULT that
// does I/O on one of its files. A ULT submits under the ring's lock and reaps what has already
// completed (a page-cache copy often completes inside the submission), then waits on an Eventual,
// which switches to other ULTs. A completion thread per ring sleeps in the kernel until completions
// arrive, reaps them under the same lock and wakes their ULTs; a waiting ULT first polls for a
// short while itself (run()).
//
// Why a thread: the execution stream must never block in the kernel for the disk. An earlier
// version had the waiting ULT poll, then block in io_uring_wait_cqe_timeout in 0.5 ms slices;
// while a flush or a congested writeback took milliseconds, the stream ran its other ULTs (the
// progress loop pulling the rest of a pipelined write) only between slices. The cost: one thread
// wake-up per operation that outlasts the polling.

#include <fcntl.h>
#include <liburing.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <mutex>
#include <thread>

#include "dango/thread/eventual.hpp"
#include "dango/thread/ult.hpp"
#include "services/blob/io_engine.hpp"

namespace dango::blob {
namespace {

// One operation a ULT waits for: its result (a count, or -errno).
using Slot = thread::Eventual<int>;

class UringEngine final : public IoEngine {
 public:
  ~UringEngine() override {
    if (!ready_) return;
    stopping_.store(true, std::memory_order_release);
    {
      // A no-op completion wakes the completion thread, which then sees stopping_.
      std::lock_guard lock(mutex_);
      io_uring_sqe* sqe = get_sqe_locked();
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data(sqe, nullptr);
      io_uring_submit(&ring_);
    }
    completions_.join();
    io_uring_queue_exit(&ring_);
  }
  // Sets the ring up in place (liburing keeps pointers into it) and starts the completion
  // thread; 0 or an errno.
  int init(unsigned queue_depth) {
    const int result = io_uring_queue_init(queue_depth, &ring_, 0);
    if (result != 0) return -result;
    ready_ = true;
    completions_ = std::thread([this] { complete(); });
    return 0;
  }
  std::string_view name() const override { return "io_uring"; }

  int write(int fd, std::span<const std::byte> data, uint64_t offset) override {
    while (!data.empty()) {
      const int n = run([&](io_uring_sqe* sqe) {
        io_uring_prep_write(sqe, fd, data.data(), static_cast<unsigned>(chunk(data.size())),
                            offset);
      });
      if (n < 0) return -n;
      if (n == 0) return EIO;
      data = data.subspan(static_cast<size_t>(n));
      offset += static_cast<uint64_t>(n);
    }
    return 0;
  }

  int read(int fd, std::span<std::byte> out, uint64_t offset) override {
    while (!out.empty()) {
      const int n = run([&](io_uring_sqe* sqe) {
        io_uring_prep_read(sqe, fd, out.data(), static_cast<unsigned>(chunk(out.size())), offset);
      });
      if (n < 0) return -n;
      if (n == 0) return EIO;
      out = out.subspan(static_cast<size_t>(n));
      offset += static_cast<uint64_t>(n);
    }
    return 0;
  }

  int sync(int fd, uint64_t offset, uint64_t size) override {
    const int n = run([&](io_uring_sqe* sqe) {
      io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
      // The kernel syncs [off, off + len); len is 32 bits, and 0 means "to the end".
      sqe->off = offset;
      sqe->len = size <= UINT32_MAX ? static_cast<uint32_t>(size) : 0;
    });
    return n < 0 ? -n : 0;
  }

  int start_writeback(int fd, uint64_t offset, uint64_t size) override {
    const int n = run([&](io_uring_sqe* sqe) {
      io_uring_prep_sync_file_range(sqe, fd, static_cast<unsigned>(chunk(size)), offset,
                                    SYNC_FILE_RANGE_WRITE);
    });
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
      io_uring_sqe* sqe = get_sqe_locked();
      prepare(sqe);
      io_uring_sqe_set_data(sqe, &slot);
      const int submitted = io_uring_submit(&ring_);
      if (submitted < 0) return submitted;
      reap_locked();  // completed inside the submission: no thread wake-up
    }
    // Poll, yielding between polls, for the first kSpin: a page-cache copy or a short flush
    // completes within it and is reaped here, with no thread wake-up (under CPU contention each
    // wake-up can cost milliseconds: a 4 KiB write+persist, two syncs, measured ~7x slower
    // without this). Longer operations are left to the completion thread.
    constexpr auto kSpin = std::chrono::microseconds(2000);
    const auto spin_until = std::chrono::steady_clock::now() + kSpin;
    while (!slot.ready() && std::chrono::steady_clock::now() < spin_until) {
      {
        std::unique_lock lock(mutex_, std::try_to_lock);
        if (lock.owns_lock()) reap_locked();
      }
      if (!slot.ready()) thread::this_ult::yield();
    }
    try {
      return slot.wait();
    } catch (...) {
      // The runtime is shutting down: the kernel still owns the slot until it completes.
      while (!slot.ready()) std::this_thread::yield();
      slot.wait();
      throw;
    }
  }

  io_uring_sqe* get_sqe_locked() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    while (sqe == nullptr) {  // the queue is full: push it to the kernel, then retry
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  // The completion thread: sleeps until the ring holds a completion, reaps.
  void complete() {
    while (!stopping_.load(std::memory_order_acquire)) {
      // Returns once at least one completion is in the ring (at once when one already is).
      io_uring_enter(static_cast<unsigned>(ring_.ring_fd), 0, 1, IORING_ENTER_GETEVENTS, nullptr);
      std::lock_guard lock(mutex_);
      reap_locked();
    }
  }

  void reap_locked() {
    io_uring_cqe* cqe = nullptr;
    while (io_uring_peek_cqe(&ring_, &cqe) == 0 && cqe != nullptr) {
      auto* slot = static_cast<Slot*>(io_uring_cqe_get_data(cqe));
      const int result = cqe->res;
      io_uring_cqe_seen(&ring_, cqe);
      if (slot != nullptr) slot->set_value(result);  // its ULT may free it once woken
    }
  }

  io_uring ring_{};
  bool ready_ = false;
  std::atomic<bool> stopping_{false};
  std::thread completions_;
  std::mutex mutex_;  // guards the ring (both queues); never held across a wait
};

}  // namespace

std::unique_ptr<IoEngine> make_uring_engine(unsigned queue_depth, int& error) {
  auto engine = std::make_unique<UringEngine>();
  error = engine->init(queue_depth);
  if (error != 0) return nullptr;
  return engine;
}

}  // namespace dango::blob
