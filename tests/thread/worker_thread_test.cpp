// WorkerThread: jobs handed over by ULTs run on one OS thread of their own, in order, with their
// results and exceptions returned to the caller, while the caller's stream serves other ULTs.

#include "dango/thread/worker_thread.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dango/thread/thread.hpp"
#include "thread/thread_test_util.hpp"

namespace dango::thread {
namespace {

using namespace std::chrono_literals;

TEST(WorkerThread, RunsEveryJobOnOneThreadOfItsOwnAndReturnsItsResult) {
  Runtime rt{testing::one_stream()};
  WorkerThread worker;
  std::vector<std::thread::id> ran_on(20);
  std::vector<int> results(20);
  std::vector<Ult> ults;
  for (int i = 0; i < 20; ++i) {
    ults.push_back(rt.pool("one").spawn([&, i] {
      results[i] = worker.run([&] {
        ran_on[i] = std::this_thread::get_id();
        return i * i;
      });
    }));
  }
  for (auto& ult : ults) ult.join();
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(results[i], i * i);
    EXPECT_EQ(ran_on[i], worker.id());
  }
  EXPECT_NE(worker.id(), std::this_thread::get_id());
}

TEST(WorkerThread, AJobsExceptionReachesTheCallerAndLaterJobsStillRun) {
  Runtime rt{testing::one_stream()};
  WorkerThread worker;
  rt.pool("one")
      .spawn([&] {
        EXPECT_THROW(worker.run([]() -> int { throw std::invalid_argument("bad job"); }),
                     std::invalid_argument);
        std::string s = worker.run([] { return std::string("after"); });
        EXPECT_EQ(s, "after");
        worker.run([] {});  // void jobs too
      })
      .join();
}

TEST(WorkerThread, TheCallersStreamServesOtherUltsWhileAJobRuns) {
  Runtime rt{testing::one_stream()};
  WorkerThread worker;
  std::atomic<bool> job_running = false, other_ran_meanwhile = false, release = false;
  auto waiting = rt.pool("one").spawn([&] {
    worker.run([&] {
      job_running = true;
      while (!release) std::this_thread::sleep_for(100us);
    });
  });
  auto other = rt.pool("one").spawn([&] {
    while (!job_running) this_ult::yield();
    other_ran_meanwhile = true;  // the only stream is free although a job is in progress
    release = true;
  });
  other.join();
  waiting.join();
  EXPECT_TRUE(other_ran_meanwhile);
}

TEST(WorkerThread, JobsRunOneAtATimeAndEachCallersInItsOrder) {
  WorkerThread worker;  // plain threads may hand jobs over too
  std::vector<std::pair<int, int>> order;  // (caller, its job number)
  std::atomic<int> inside = 0;
  bool overlapped = false;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        worker.run([&] {
          if (inside.fetch_add(1) != 0) overlapped = true;
          order.emplace_back(t, i);
          inside.fetch_sub(1);
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_FALSE(overlapped);
  ASSERT_EQ(order.size(), 400u);
  std::vector<int> next(4, 0);
  for (auto [t, i] : order) EXPECT_EQ(i, next[t]++);
}

}  // namespace
}  // namespace dango::thread
