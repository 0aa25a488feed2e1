#pragma once
// A hang guard for test programs: a deadlock in a scheduler or a call that never returns would
// otherwise stall the whole program (run outside CTest, which has its own timeout) without
// naming the test. This listener aborts, naming the test, when one runs longer than
// kTestDeadline. Included by each test program that needs it; installed once per program.

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

namespace dango::testing {

// A deadlock or a call that never returns would otherwise stall the whole program without
// naming the test: abort, naming it, when one test runs longer than kTestDeadline.
class HangWatchdog : public ::testing::EmptyTestEventListener {
 public:
  static constexpr auto kTestDeadline = std::chrono::seconds(90);

  ~HangWatchdog() override {
    {
      std::lock_guard lock(mutex_);
      quit_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  void OnTestStart(const ::testing::TestInfo& info) override {
    std::lock_guard lock(mutex_);
    name_ = std::string(info.test_suite_name()) + "." + info.name();
    deadline_ = std::chrono::steady_clock::now() + kTestDeadline;
    running_ = true;
    if (!thread_.joinable()) thread_ = std::thread([this] { watch(); });
  }
  void OnTestEnd(const ::testing::TestInfo&) override {
    std::lock_guard lock(mutex_);
    running_ = false;
  }

 private:
  void watch() {
    std::unique_lock lock(mutex_);
    while (!quit_) {
      cv_.wait_for(lock, std::chrono::milliseconds(200));
      if (running_ && std::chrono::steady_clock::now() > deadline_) {
        std::fprintf(stderr, "\n[watchdog] %s still running after %llds: aborting (hang)\n",
                     name_.c_str(), static_cast<long long>(kTestDeadline.count()));
        std::fflush(stderr);
        std::abort();
      }
    }
  }
  std::mutex mutex_;
  std::condition_variable cv_;
  std::thread thread_;
  std::string name_;
  std::chrono::steady_clock::time_point deadline_;
  bool running_ = false;
  bool quit_ = false;
};

// Installed once for the whole test program (an inline variable: one instance over all files).
inline const bool kHangWatchdogInstalled = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new HangWatchdog);
  return true;
}();

}  // namespace dango::testing
