#include "rpc/preemption_watch.hpp"

#include <sched.h>
#include <sys/resource.h>

#include <utility>

namespace dango::rpc::detail {

void PreemptionWatch::note_pass(Clock::time_point now) {
  const Clock::time_point previous = std::exchange(last_pass_, now);
  const bool gap = now - previous >= kPreemptedGap;
  if (!gap && now - last_sample_ < kSampleInterval) return;
  const long before = involuntary_switches_;
  const pthread_t thread = thread_;
  // The count before the gap is usable only if it was read just before the gap began.
  const bool comparable = before >= 0 && previous - last_sample_ <= kSampleInterval;
  if (!sample(now) || !gap || !comparable || !pthread_equal(thread, thread_)) return;
  if (involuntary_switches_ > before) contended_until_ = now + kContentionMemory;
}

void PreemptionWatch::pause(Clock::time_point now, Clock::duration idle) const {
  if (now < contended_until_ && idle >= kSpinBeforeYield) ::sched_yield();
}

bool PreemptionWatch::sample(Clock::time_point now) {
  last_sample_ = now;
  rusage usage{};
  if (::getrusage(RUSAGE_THREAD, &usage) != 0) {
    involuntary_switches_ = -1;
    return false;
  }
  involuntary_switches_ = usage.ru_nivcsw;
  thread_ = ::pthread_self();
  return true;
}

}  // namespace dango::rpc::detail
