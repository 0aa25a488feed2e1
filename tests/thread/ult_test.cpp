// ULTs and pools: spawn, join, detach, ordering of the pool kinds, yield, sleep, stacks.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dango/common/error.hpp"
#include "dango/thread/thread.hpp"

namespace dango::thread {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// One pool "work" of `kind` served by `streams` execution streams.
ThreadsOptions work_pool(PoolKind kind = PoolKind::kFifoWait, int streams = 1) {
  ThreadsOptions options{.pools = {{.name = "work", .kind = kind}}};
  for (int i = 0; i < streams; ++i) {
    options.xstreams.push_back({.name = "x" + std::to_string(i), .pools = {"work"}});
  }
  return options;
}

// Occupies the execution stream it runs on, without yielding, until released: lets a test
// queue ULTs in a pool while its stream is busy, then watch the order in which they run.
class StreamBlocker {
 public:
  void run() {
    started_.store(true, std::memory_order_release);
    while (!released_.load(std::memory_order_acquire)) __builtin_ia32_pause();
  }
  // Waits (on the calling OS thread) until run() has started; false after 10 s.
  bool wait_started() const {
    const auto deadline = Clock::now() + 10s;
    while (!started_.load(std::memory_order_acquire)) {
      if (Clock::now() > deadline) return false;
      std::this_thread::yield();
    }
    return true;
  }
  void release() { released_.store(true, std::memory_order_release); }

 private:
  std::atomic<bool> started_{false};
  std::atomic<bool> released_{false};
};

std::string kind_name(const testing::TestParamInfo<PoolKind>& info) {
  switch (info.param) {
    case PoolKind::kFifo:
      return "fifo";
    case PoolKind::kFifoWait:
      return "fifo_wait";
    case PoolKind::kPrioWait:
      return "prio_wait";
  }
  return "unknown";
}

// ---- behaviour shared by every pool kind ------------------------------------------------------

class EveryPoolKind : public testing::TestWithParam<PoolKind> {};

TEST_P(EveryPoolKind, SpawnThenJoinRunsTheFunctionOnce) {
  Runtime rt{work_pool(GetParam())};
  int runs = 0;
  Ult ult = rt.pool("work").spawn([&] { ++runs; });
  EXPECT_TRUE(ult.joinable());
  ult.join();
  EXPECT_FALSE(ult.joinable());
  EXPECT_EQ(runs, 1);
}

TEST_P(EveryPoolKind, PoolReportsItsNameAndKind) {
  Runtime rt{work_pool(GetParam())};
  const Pool pool = rt.pool("work");
  EXPECT_TRUE(pool.valid());
  EXPECT_EQ(pool.name(), "work");
  EXPECT_EQ(pool.kind(), GetParam());
}

TEST_P(EveryPoolKind, RunsUltsInSpawnOrderWhenPrioritiesAreEqual) {
  Runtime rt{work_pool(GetParam())};
  const Pool pool = rt.pool("work");
  StreamBlocker blocker;
  Ult blocking = pool.spawn([&] { blocker.run(); });
  ASSERT_TRUE(blocker.wait_started());

  constexpr int kCount = 50;
  std::vector<int> order;  // touched only by ULTs of the one stream, read after their joins
  std::vector<Ult> ults;
  for (int i = 0; i < kCount; ++i) ults.push_back(pool.spawn([&order, i] { order.push_back(i); }));
  EXPECT_EQ(pool.size(), static_cast<size_t>(kCount));
  blocker.release();
  blocking.join();
  for (Ult& ult : ults) ult.join();

  std::vector<int> expected(kCount);
  for (int i = 0; i < kCount; ++i) expected[i] = i;
  EXPECT_EQ(order, expected);
}

TEST_P(EveryPoolKind, HundredThousandShortUltsAcrossTwoStreamsAllRun) {
  Runtime rt{work_pool(GetParam(), /*streams=*/2)};
  const Pool pool = rt.pool("work");
  constexpr int kCount = 100'000;
  std::atomic<int> ran{0};
  std::vector<Ult> ults;
  ults.reserve(kCount);
  for (int i = 0; i < kCount; ++i) {
    ults.push_back(pool.spawn([&ran] { ran.fetch_add(1, std::memory_order_relaxed); }));
  }
  for (Ult& ult : ults) ult.join();
  EXPECT_EQ(ran.load(), kCount);
}

INSTANTIATE_TEST_SUITE_P(Kinds, EveryPoolKind,
                         testing::Values(PoolKind::kFifo, PoolKind::kFifoWait, PoolKind::kPrioWait),
                         kind_name);

// ---- ordering ---------------------------------------------------------------------------------

TEST(Pool, FifoRunsPrimaryPoolUltsInSpawnOrder) {
  Runtime rt;
  std::vector<int> order;
  std::vector<Ult> ults;
  for (int i = 0; i < 20; ++i) {
    ults.push_back(rt.primary_pool().spawn([&order, i] { order.push_back(i); }));
  }
  for (Ult& ult : ults) ult.join();  // the primary thread runs them while it waits
  ASSERT_EQ(order.size(), 20u);
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
}

TEST(Pool, SizeCountsUltsWaitingToRun) {
  Runtime rt{work_pool()};
  const Pool pool = rt.pool("work");
  StreamBlocker blocker;
  Ult blocking = pool.spawn([&] { blocker.run(); });
  ASSERT_TRUE(blocker.wait_started());
  EXPECT_EQ(pool.size(), 0u);  // the running blocker is not counted
  std::vector<Ult> ults;
  for (int i = 0; i < 3; ++i) ults.push_back(pool.spawn([] {}));
  EXPECT_EQ(pool.size(), 3u);
  blocker.release();
  blocking.join();
  for (Ult& ult : ults) ult.join();
  EXPECT_EQ(pool.size(), 0u);
}

TEST(PrioPool, HigherPriorityRunsFirstAndFifoAmongEquals) {
  Runtime rt{work_pool(PoolKind::kPrioWait)};
  const Pool pool = rt.pool("work");
  StreamBlocker blocker;
  Ult blocking = pool.spawn([&] { blocker.run(); });
  ASSERT_TRUE(blocker.wait_started());

  const std::vector<int> priorities = {1, 5, 3, 5, 1, 10, 3, 0, -2, 5, 0};
  std::vector<std::pair<int, int>> order;  // (priority, spawn index), in run order
  std::vector<Ult> ults;
  for (int i = 0; i < static_cast<int>(priorities.size()); ++i) {
    const int priority = priorities[i];
    ults.push_back(pool.spawn([&order, priority, i] { order.emplace_back(priority, i); },
                              {.priority = priority}));
  }
  blocker.release();
  blocking.join();
  for (Ult& ult : ults) ult.join();

  std::vector<std::pair<int, int>> expected;
  for (int i = 0; i < static_cast<int>(priorities.size()); ++i) {
    expected.emplace_back(priorities[i], i);
  }
  std::stable_sort(expected.begin(), expected.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  EXPECT_EQ(order, expected);
}

TEST(PrioPool, UltSpawnedByARunningUltWithHigherPriorityRunsNext) {
  Runtime rt{work_pool(PoolKind::kPrioWait)};
  const Pool pool = rt.pool("work");
  std::vector<std::string> order;
  Ult parent = pool.spawn([&] {
    // Both spawned while this ULT holds the stream; the urgent one must overtake.
    Ult low = pool.spawn([&] { order.push_back("low"); }, {.priority = 0});
    Ult high = pool.spawn([&] { order.push_back("high"); }, {.priority = 7});
    low.join();
    high.join();
  });
  parent.join();
  EXPECT_EQ(order, (std::vector<std::string>{"high", "low"}));
}

// ---- join, detach, handles --------------------------------------------------------------------

TEST(Ult, JoinRethrowsTheUltsException) {
  Runtime rt{work_pool()};
  Ult ult = rt.pool("work").spawn([] { throw std::runtime_error("boom"); });
  try {
    ult.join();
    FAIL() << "join() did not rethrow";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "boom");
  }
}

TEST(Ult, JoinInsideAUltRethrowsWithTheOriginalType) {
  Runtime rt{work_pool(PoolKind::kFifoWait, 2)};
  const Pool pool = rt.pool("work");
  std::string caught;
  Ult outer = pool.spawn([&] {
    Ult inner = pool.spawn([] { throw TimeoutError("inner timed out"); });
    try {
      inner.join();
    } catch (const TimeoutError& e) {
      caught = e.what();
    }
  });
  outer.join();
  EXPECT_EQ(caught, "inner timed out");
}

TEST(Ult, JoinOfAUltOnAnotherStreamWakesTheJoiner) {
  ThreadsOptions options{
      .pools = {{.name = "a"}, {.name = "b"}},
      .xstreams = {{.name = "A", .pools = {"a"}}, {.name = "B", .pools = {"b"}}}};
  Runtime rt{options};
  const Pool b = rt.pool("b");
  std::thread::id joiner_thread, worker_thread;
  bool worker_done_before_join_returned = false;
  Ult outer = rt.pool("a").spawn([&] {
    joiner_thread = std::this_thread::get_id();
    bool done = false;
    Ult inner = b.spawn([&] {
      worker_thread = std::this_thread::get_id();
      this_ult::sleep_for(10ms);
      done = true;
    });
    inner.join();
    worker_done_before_join_returned = done;
  });
  outer.join();
  EXPECT_TRUE(worker_done_before_join_returned);
  EXPECT_NE(joiner_thread, worker_thread);
}

TEST(Ult, RecursiveTreeOfJoiningUltsComputesFibonacci) {
  Runtime rt{work_pool(PoolKind::kFifoWait, 2)};
  const Pool pool = rt.pool("work");
  std::function<int(int)> fib = [&](int n) -> int {
    if (n < 2) return n;
    int left = 0;
    Ult child = pool.spawn([&] { left = fib(n - 1); });
    const int right = fib(n - 2);
    child.join();
    return left + right;
  };
  int result = 0;
  pool.spawn([&] { result = fib(15); }).join();
  EXPECT_EQ(result, 610);
}

TEST(Ult, MovedFromHandleIsNotJoinable) {
  Runtime rt{work_pool()};
  Ult a = rt.pool("work").spawn([] {});
  Ult b = std::move(a);
  EXPECT_FALSE(a.joinable());  // NOLINT(bugprone-use-after-move): testing the moved-from state
  EXPECT_TRUE(b.joinable());
  b.join();
  Ult c;
  EXPECT_FALSE(c.joinable());
}

TEST(Ult, DetachedUltRunsToCompletion) {
  Runtime rt{work_pool()};
  Eventual<int> done;
  Ult ult = rt.pool("work").spawn([&] {
    this_ult::sleep_for(5ms);
    done.set_value(7);
  });
  ult.detach();
  EXPECT_FALSE(ult.joinable());
  ASSERT_TRUE(done.wait_for(10s));
  EXPECT_EQ(done.get(), 7);
}

TEST(Ult, DroppedHandleDetachesTheUlt) {
  Runtime rt{work_pool()};
  Eventual<> done;
  {
    Ult dropped = rt.pool("work").spawn([&] { done.set_value(); });
  }
  EXPECT_TRUE(done.wait_for(10s));
}

TEST(Ult, DetachedUltThatThrowsDoesNotDisturbOthers) {
  Runtime rt{work_pool()};
  const Pool pool = rt.pool("work");
  pool.spawn([] { throw std::runtime_error("logged, not fatal"); }).detach();
  int after = 0;
  pool.spawn([&] { after = 1; }).join();
  EXPECT_EQ(after, 1);
}

TEST(Ult, LargeCaptureIsMovedIntoTheUlt) {
  Runtime rt{work_pool()};
  std::vector<int> big(1000, 3);
  auto owned = std::make_unique<int>(4);  // move-only capture
  int sum = 0;
  rt.pool("work")
      .spawn([&sum, big = std::move(big), owned = std::move(owned)] {
        for (int v : big) sum += v;
        sum += *owned;
      })
      .join();
  EXPECT_EQ(sum, 3004);
}

// ---- inside, current pool ---------------------------------------------------------------------

TEST(ThisUlt, InsideIsTrueOnlyInAUlt) {
  Runtime rt{work_pool()};
  EXPECT_FALSE(this_ult::inside());
  bool inside = false;
  rt.pool("work").spawn([&] { inside = this_ult::inside(); }).join();
  EXPECT_TRUE(inside);
}

TEST(ThisUlt, CurrentPoolIsThePoolTheUltWasSpawnedIn) {
  Runtime rt{work_pool()};
  EXPECT_FALSE(current_pool().valid());
  Pool seen;
  rt.pool("work").spawn([&] { seen = current_pool(); }).join();
  EXPECT_EQ(seen, rt.pool("work"));
  Pool seen_on_primary;
  rt.primary_pool().spawn([&] { seen_on_primary = current_pool(); }).join();
  EXPECT_EQ(seen_on_primary, rt.primary_pool());
}

// ---- yield and sleep --------------------------------------------------------------------------

TEST(ThisUlt, YieldAlternatesTwoUltsOnOneStream) {
  Runtime rt{work_pool()};
  const Pool pool = rt.pool("work");
  StreamBlocker blocker;
  Ult blocking = pool.spawn([&] { blocker.run(); });
  ASSERT_TRUE(blocker.wait_started());
  std::string trace;
  auto player = [&trace](char who) {
    for (int i = 0; i < 20; ++i) {
      trace.push_back(who);
      this_ult::yield();
    }
  };
  Ult a = pool.spawn([&] { player('a'); });
  Ult b = pool.spawn([&] { player('b'); });
  blocker.release();
  blocking.join();
  a.join();
  b.join();
  std::string expected;
  for (int i = 0; i < 20; ++i) expected += "ab";
  EXPECT_EQ(trace, expected);
}

TEST(ThisUlt, YieldOutsideAUltReturns) { this_ult::yield(); }

TEST(ThisUlt, SleepForSleepsAtLeastTheDurationWhileOthersRun) {
  Runtime rt{work_pool()};
  const Pool pool = rt.pool("work");
  std::atomic<bool> sleeper_done{false};
  std::atomic<long> ticks{0};
  Clock::duration slept{};
  long ticks_during_sleep = 0;
  Ult sleeper = pool.spawn([&] {
    const long ticks_before = ticks.load();
    const auto start = Clock::now();
    this_ult::sleep_for(50ms);
    slept = Clock::now() - start;
    ticks_during_sleep = ticks.load() - ticks_before;
    sleeper_done = true;
  });
  // Keeps the stream busy, yielding: the sleeper must still wake up (its timer is not only
  // checked when the stream is idle), and the ticker runs while the sleeper sleeps.
  Ult ticker = pool.spawn([&] {
    const auto give_up = Clock::now() + 10s;
    while (!sleeper_done && Clock::now() < give_up) {
      ticks.fetch_add(1);
      this_ult::yield();
    }
  });
  sleeper.join();
  ticker.join();
  EXPECT_GE(slept, 50ms);
  EXPECT_LT(slept, 5s) << "the sleeper was starved by a yielding ULT";
  EXPECT_GT(ticks_during_sleep, 0);
}

TEST(ThisUlt, SleepUntilAPastDeadlineReturnsAtOnce) {
  Runtime rt{work_pool()};
  Clock::duration took{};
  rt.pool("work")
      .spawn([&] {
        const auto start = Clock::now();
        this_ult::sleep_until(start - 1s);
        took = Clock::now() - start;
      })
      .join();
  EXPECT_LT(took, 1s);
}

TEST(ThisUlt, ManySleepersOnOneStreamWakeInDeadlineOrder) {
  Runtime rt{work_pool()};
  const Pool pool = rt.pool("work");
  std::vector<int> woke;
  std::vector<Ult> ults;
  for (int ms : {40, 10, 30, 20}) {
    ults.push_back(pool.spawn([&woke, ms] {
      this_ult::sleep_for(std::chrono::milliseconds(ms));
      woke.push_back(ms);
    }));
  }
  for (Ult& ult : ults) ult.join();
  EXPECT_EQ(woke, (std::vector<int>{10, 20, 30, 40}));
}

// ---- stacks -----------------------------------------------------------------------------------

TEST(Ult, ConfiguredStackSizeHoldsLargeFrames) {
  ThreadsOptions options = work_pool();
  options.stack_size = size_t{1} << 20;
  Runtime rt{options};
  unsigned sum = 0;
  rt.pool("work")
      .spawn([&sum] {
        volatile unsigned char frame[512 << 10];
        for (size_t i = 0; i < sizeof frame; i += 4096)
          frame[i] = static_cast<unsigned char>(i / 4096 + 1);
        for (size_t i = 0; i < sizeof frame; i += 4096) sum += frame[i];
      })
      .join();
  EXPECT_GT(sum, 0u);
}

}  // namespace
}  // namespace dango::thread
