#pragma once

#include <pthread.h>

#include <algorithm>
#include <chrono>

namespace dango::rpc::detail {

// How long the progress loop keeps polling after activity before it sleeps in the kernel.
//
// Polling pays only while the polling thread has a CPU to itself. When a node has more runnable
// threads than CPUs, a poller burns its time slice spinning, the kernel preempts it, and the
// message it waited for is seen only when the scheduler gives it a CPU back, at a later tick:
// a 16 MiB same-node pull whose copy took 2.5 ms was seen by its caller after 16 ms, with the
// caller spinning meanwhile on the CPU the copying peer needed. A sleeping thread that a message
// wakes is scheduled at once instead. So while there is evidence that this thread is being
// preempted, the window shrinks to a short spin (enough for a small RPC's round trip) before
// sleeping; the configured window comes back once no preemption has been seen for a while.
//
// Evidence: a pass of the loop that started much later than the previous one (the thread lost
// the CPU, or ran a long handler, or slept) while the thread's involuntary context switches grew
// (only the first). The count is read after such a gap and once per kSampleInterval, so that
// growth is tied to the gap; a pass in between costs two comparisons.
class PollWindow {
 public:
  using Clock = std::chrono::steady_clock;

  explicit PollWindow(std::chrono::microseconds configured) : configured_(configured) {}

  // Records the start of a pass of the progress loop at `now`.
  void note_pass(Clock::time_point now);

  // How long after the last activity the loop may still poll, as of `now`.
  Clock::duration window(Clock::time_point now) const {
    if (now < contended_until_) return std::min<Clock::duration>(configured_, kContendedSpin);
    return configured_;
  }

  // Polling spin while preemption is being seen: a few round trips of a small message.
  static constexpr std::chrono::microseconds kContendedSpin{50};
  // A pass that starts this long after the previous one may have lost the CPU. A scheduler
  // tick is 1-4 ms; an interrupt or a kernel thread takes microseconds.
  static constexpr std::chrono::microseconds kPreemptedGap{250};
  // How long one sign of preemption keeps the window short.
  static constexpr std::chrono::seconds kContentionMemory{1};
  // The involuntary switch count is read at least this often while the loop runs.
  static constexpr std::chrono::milliseconds kSampleInterval{1};

 private:
  // Reads the involuntary switch count of the calling thread; false if it cannot.
  bool sample(Clock::time_point now);

  std::chrono::microseconds configured_;
  Clock::time_point last_pass_{};
  Clock::time_point contended_until_{};
  // Involuntary context switches of `thread_` read at `last_sample_` (-1: none yet). The loop
  // is a ULT, which may move to another thread of its pool: counts of two threads never compare.
  long involuntary_switches_ = -1;
  pthread_t thread_{};
  Clock::time_point last_sample_{};
};

}  // namespace dango::rpc::detail
