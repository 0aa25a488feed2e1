#pragma once

#include <pthread.h>

#include <chrono>

namespace dango::rpc::detail {

// How the progress loop polls during its window after activity (options.progress_poll): by
// spinning, or, while its thread is being preempted and the wait is not short, by giving the CPU
// away between passes.
//
// Spinning pays only while the polling thread has a CPU to itself. When a node has more runnable
// threads than CPUs, the kernel may put the poller on the CPU of the very peer it waits for (or
// of another busy thread): the poller then spins through its time slice, holding the CPU the peer
// needs, and sees the peer's message only after a scheduler tick. On 2 loaded CPUs a 1 MiB
// same-node pull (75 us of copy) took 16 ms that way, a 16 MiB one 16 ms instead of 2.5. Sleeping
// in the kernel instead costs two wake-ups per call (a 1 MiB pull ran at half speed). Polling
// with sched_yield() between passes hands the CPU to the peer at once when they share it (sm
// pulls of 16 / 64 MiB, median of 3 runs against a raw process_vm_readv in the same run, went
// from 0.81x / 0.67x to 0.88x / 0.85x on that machine, the worst run from 0.26x to 0.61x). But a
// yield per pass slows the detection of a quick reply (an empty tcp RPC took 14 us instead of 8),
// so the loop first spins for kSpinBeforeYield, which covers a small RPC's round trip.
//
// Evidence of preemption: a pass of the loop that started much later than the previous one (the
// thread lost the CPU, or ran a long handler, or slept) while the thread's involuntary context
// switches grew (only the first). The count is read after such a gap and once per
// kSampleInterval, so that growth is tied to the gap; other passes cost two comparisons.
class PreemptionWatch {
 public:
  using Clock = std::chrono::steady_clock;

  // Records the start of a pass of the progress loop at `now`.
  void note_pass(Clock::time_point now);

  // Called on an idle pass that keeps polling, `idle` after the last activity: gives the CPU to
  // any other thread ready to run on it while this one is being preempted and the wait is not
  // short; returns at once otherwise.
  void pause(Clock::time_point now, Clock::duration idle) const;

  // How long an idle loop spins before it starts yielding: a few round trips of a small message.
  static constexpr std::chrono::microseconds kSpinBeforeYield{50};
  // A pass that starts this long after the previous one may have lost the CPU. A scheduler
  // tick is 1-4 ms; an interrupt or a kernel thread takes microseconds.
  static constexpr std::chrono::microseconds kPreemptedGap{250};
  // How long one sign of preemption keeps the loop polling politely.
  static constexpr std::chrono::seconds kContentionMemory{1};
  // The involuntary switch count is read at least this often while the loop runs.
  static constexpr std::chrono::milliseconds kSampleInterval{1};

 private:
  // Reads the involuntary switch count of the calling thread; false if it cannot.
  bool sample(Clock::time_point now);

  Clock::time_point last_pass_{};
  Clock::time_point contended_until_{};
  // Involuntary context switches of `thread_` read at `last_sample_` (-1: none yet). The loop
  // is a ULT, which may move to another thread of its pool: counts of two threads never compare.
  long involuntary_switches_ = -1;
  pthread_t thread_{};
  Clock::time_point last_sample_{};
};

}  // namespace dango::rpc::detail
