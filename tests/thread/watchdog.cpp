// A hang guard for the thread-layer tests: a deadlock in a scheduler shows up as a test that
// never ends. When run outside CTest (which has its own timeout) that would stall the whole
// program without saying which test hung, so this listener aborts the process, naming the test,
// when one runs longer than kTestDeadline.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

namespace {

constexpr auto kTestDeadline = std::chrono::seconds(90);

class HangWatchdog : public testing::EmptyTestEventListener {
 public:
  void OnTestStart(const testing::TestInfo& info) override {
    std::lock_guard lock(mutex_);
    name_ = std::string(info.test_suite_name()) + "." + info.name();
    deadline_ = std::chrono::steady_clock::now() + kTestDeadline;
    running_ = true;
    if (!started_) {
      started_ = true;
      // Detached: it must never keep the process alive nor be joined at exit.
      std::thread([this] { watch(); }).detach();
    }
  }
  void OnTestEnd(const testing::TestInfo&) override {
    std::lock_guard lock(mutex_);
    running_ = false;
  }

 private:
  void watch() {
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      std::lock_guard lock(mutex_);
      if (running_ && std::chrono::steady_clock::now() > deadline_) {
        std::fprintf(stderr, "\n[watchdog] %s still running after %llds: aborting (hang)\n",
                     name_.c_str(), static_cast<long long>(kTestDeadline.count()));
        std::fflush(stderr);
        std::abort();
      }
    }
  }

  std::mutex mutex_;
  std::string name_;
  std::chrono::steady_clock::time_point deadline_;
  bool running_ = false;
  bool started_ = false;
};

// The listener list takes ownership; it lives until the end of the program.
[[maybe_unused]] const bool kWatchdogInstalled = [] {
  testing::UnitTest::GetInstance()->listeners().Append(new HangWatchdog);
  return true;
}();

}  // namespace
