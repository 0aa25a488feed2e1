// Runtime: construction from options, pool lookup, the primary stream, and shutdown — which
// must wake every blocked ULT with dango::ShutdownError and never hang.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dango/common/error.hpp"
#include "dango/thread/thread.hpp"
#include "thread/thread_test_util.hpp"

namespace dango::thread {
namespace {

using testing::two_streams;

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Bound on any shutdown in these tests; a correct one takes milliseconds.
constexpr auto kShutdownBound = 10s;


// Runs `scenario` on a fresh OS thread (which becomes the primary thread of the runtime the
// scenario creates) and waits at most `bound` for it. A scenario that hangs is abandoned (its
// thread detached) so that the failure is reported instead of stalling the program.
bool finishes_within(std::chrono::nanoseconds bound, std::function<void()> scenario) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  std::thread runner([done, scenario = std::move(scenario)] {
    scenario();
    done->set_value();
  });
  if (finished.wait_for(bound) != std::future_status::ready) {
    runner.detach();
    return false;
  }
  runner.join();
  return true;
}

// Waits (on the calling OS thread) until `count` reaches `target`; false after 10 s.
bool reaches(const std::atomic<int>& count, int target) {
  const auto give_up = Clock::now() + 10s;
  while (count.load() < target) {
    if (Clock::now() > give_up) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// ---- construction and lookup ------------------------------------------------------------------

TEST(Runtime, DefaultRuntimeHasOnlyThePrimaryPool) {
  Runtime rt;
  const Pool primary = rt.primary_pool();
  ASSERT_TRUE(primary.valid());
  EXPECT_EQ(primary.name(), kPrimary);
  EXPECT_EQ(primary.kind(), PoolKind::kFifoWait);
  EXPECT_EQ(rt.pool("__primary__"), primary);
  EXPECT_FALSE(rt.stopping());
}

TEST(Runtime, LookupOfAnUnknownPoolThrowsConfigErrorNamingIt) {
  Runtime rt{two_streams()};
  try {
    rt.pool("nope");
    FAIL() << "pool(\"nope\") did not throw";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos) << e.what();
  }
}

TEST(Runtime, DistinctNamesGiveDistinctPools) {
  Runtime rt{two_streams()};
  EXPECT_NE(rt.pool("a"), rt.pool("b"));
  EXPECT_EQ(rt.pool("a"), rt.pool("a"));
  EXPECT_FALSE(Pool{}.valid());
}

TEST(Runtime, OptionsReturnsTheConfiguration) {
  ThreadsOptions options = two_streams();
  options.rpc_pool = "b";
  Runtime rt{options};
  EXPECT_EQ(rt.options().rpc_pool, "b");
  EXPECT_EQ(rt.options().xstreams.size(), 2u);
}

TEST(Runtime, PrimaryPoolKindCanBeConfigured) {
  Runtime rt{{.pools = {{.name = "__primary__", .kind = PoolKind::kPrioWait}}}};
  EXPECT_EQ(rt.primary_pool().kind(), PoolKind::kPrioWait);
  int ran = 0;
  rt.primary_pool().spawn([&] { ran = 1; }, {.priority = 3}).join();
  EXPECT_EQ(ran, 1);
}

TEST(Runtime, UltsOfEachPoolRunOnTheirOwnStream) {
  Runtime rt{two_streams()};
  std::thread::id on_a, on_b, on_a_again;
  rt.pool("a").spawn([&] { on_a = std::this_thread::get_id(); }).join();
  rt.pool("b").spawn([&] { on_b = std::this_thread::get_id(); }).join();
  rt.pool("a").spawn([&] { on_a_again = std::this_thread::get_id(); }).join();
  EXPECT_NE(on_a, std::this_thread::get_id());
  EXPECT_NE(on_b, std::this_thread::get_id());
  EXPECT_NE(on_a, on_b);
  EXPECT_EQ(on_a, on_a_again);
}

TEST(Runtime, PrimaryStreamServesThePoolsListedForIt) {
  Runtime rt{{.pools = {{.name = "extra"}},
              .xstreams = {{.name = "__primary__", .pools = {"__primary__", "extra"}}}}};
  std::thread::id ran_on;
  rt.pool("extra").spawn([&] { ran_on = std::this_thread::get_id(); }).join();
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST(Runtime, PoolsListsEveryPoolAndTheirQueuedUlts) {
  Runtime rt{two_streams()};
  std::vector<std::string> names;
  for (const Pool& pool : rt.pools()) names.emplace_back(pool.name());
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "__primary__"}));
  // ULTs of the primary pool wait in its queue until this thread runs them.
  std::vector<Ult> ults;
  for (int i = 0; i < 3; ++i) ults.push_back(rt.primary_pool().spawn([] {}));
  EXPECT_EQ(rt.primary_pool().size(), 3u);
  for (auto& ult : ults) ult.join();
  EXPECT_EQ(rt.primary_pool().size(), 0u);
}

TEST(Runtime, ActivityTellsAnIdleStreamFromABusyOne) {
  // Waiting pools: an idle stream sleeps (a plain fifo one would keep polling, busy).
  Runtime rt{{.pools = {{.name = "a", .kind = PoolKind::kFifoWait}, {.name = "b", .kind = PoolKind::kFifoWait}},
              .xstreams = {{.name = "A", .pools = {"a"}}, {.name = "B", .pools = {"b"}}}}};
  std::atomic<bool> stop{false};
  // Stream B spins in a ULT that yields; stream A has nothing to do and sleeps.
  Ult spinner = rt.pool("b").spawn([&] {
    while (!stop.load()) this_ult::yield();
  });
  auto before = rt.activity();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto after = rt.activity();
  stop = true;
  spinner.join();
  ASSERT_EQ(after.size(), 3u);
  auto utilisation = [&](size_t i) {
    double alive = static_cast<double>((after[i].alive - before[i].alive).count());
    double slept = static_cast<double>((after[i].slept - before[i].slept).count());
    return 1.0 - slept / alive;
  };
  EXPECT_EQ(after[0].name, "__primary__");
  EXPECT_EQ(after[1].name, "A");
  EXPECT_EQ(after[2].name, "B");
  EXPECT_LT(utilisation(1), 0.5) << "idle stream A";
  EXPECT_GT(utilisation(2), 0.5) << "spinning stream B";
}

TEST(Runtime, SeveralRuntimesCanBeCreatedOneAfterAnother) {
  for (int i = 0; i < 5; ++i) {
    Runtime rt{two_streams()};
    int ran = 0;
    rt.pool(i % 2 ? "a" : "b").spawn([&] { ran = i; }).join();
    EXPECT_EQ(ran, i);
  }
}

TEST(Runtime, AnyThreadCanBeThePrimaryThreadOfARuntime) {
  std::thread::id creator, ran_on;
  const bool finished = finishes_within(kShutdownBound, [&] {
    Runtime rt;
    creator = std::this_thread::get_id();
    rt.primary_pool().spawn([&] { ran_on = std::this_thread::get_id(); }).join();
  });
  ASSERT_TRUE(finished);
  EXPECT_EQ(ran_on, creator);
  EXPECT_NE(creator, std::this_thread::get_id());
}

// ---- shutdown ---------------------------------------------------------------------------------

TEST(Runtime, ShutdownWakesBlockedUltsWithShutdownError) {
  std::atomic<int> blocked{0};
  std::atomic<int> saw_shutdown_error{0};
  std::vector<std::string> other_errors;
  std::atomic<bool> stopping_before = true, stopping_after = false;
  Clock::duration shutdown_took{};
  const bool finished = finishes_within(2 * kShutdownBound, [&] {
    // Everything the ULTs use outlives the runtime (declared before it).
    Eventual<int> never;
    Mutex held;  // held by the primary thread: lock() in a ULT blocks
    Mutex cv_mutex;
    ConditionVariable cv;
    Barrier barrier(5);  // more participants than will ever come
    std::mutex errors_mutex;
    Runtime rt{two_streams()};
    // Each case blocks in one kind of wait and records how the wait ended.
    auto blocking_case = [&](std::function<void()> wait) {
      return [&, wait = std::move(wait)] {
        blocked.fetch_add(1);
        try {
          wait();
        } catch (const ShutdownError&) {
          saw_shutdown_error.fetch_add(1);
          return;
        } catch (const std::exception& e) {
          std::lock_guard lock(errors_mutex);
          other_errors.push_back(e.what());
          return;
        }
        std::lock_guard lock(errors_mutex);
        other_errors.push_back("the wait returned normally");
      };
    };
    held.lock();
    std::vector<std::function<void()>> waits = {
        [&] { never.wait(); },
        [&] { never.wait_for(1h); },
        [&] { held.lock(); },
        [&] {
          std::unique_lock lock(cv_mutex);
          cv.wait(cv_mutex, [] { return false; });
        },
        [&] { barrier.arrive_and_wait(); },
        [&] { this_ult::sleep_for(1h); },
    };
    for (size_t i = 0; i < waits.size(); ++i) {
      rt.pool(i % 2 ? "a" : "b").spawn(blocking_case(waits[i])).detach();
    }
    if (!reaches(blocked, static_cast<int>(waits.size()))) return;
    std::this_thread::sleep_for(20ms);  // let them reach their waits
    stopping_before = rt.stopping();
    const auto start = Clock::now();
    rt.shutdown();
    shutdown_took = Clock::now() - start;
    stopping_after = rt.stopping();
    held.unlock();
  });
  ASSERT_TRUE(finished) << "shutdown with blocked ULTs hung";
  EXPECT_EQ(blocked.load(), 6);
  EXPECT_EQ(saw_shutdown_error.load(), 6);
  EXPECT_TRUE(other_errors.empty()) << other_errors.front();
  EXPECT_FALSE(stopping_before);
  EXPECT_TRUE(stopping_after);
  EXPECT_LT(shutdown_took, kShutdownBound);
}

TEST(Runtime, DestructionWithBlockedUltsReturnsWithinTheBound) {
  std::atomic<int> blocked{0};
  std::atomic<int> saw_shutdown_error{0};
  Clock::duration destruction_took{};
  const bool finished = finishes_within(2 * kShutdownBound, [&] {
    Eventual<> never;
    Mutex mutex;
    ConditionVariable cv;
    auto rt = std::make_unique<Runtime>(two_streams());
    for (const char* pool : {"a", "b", "a", "b"}) {
      rt->pool(pool)
          .spawn([&] {
            try {
              std::unique_lock lock(mutex);
              blocked.fetch_add(1);
              cv.wait(mutex, [] { return false; });
            } catch (const ShutdownError&) {
              saw_shutdown_error.fetch_add(1);
            }
          })
          .detach();
    }
    rt->pool("a")
        .spawn([&] {
          blocked.fetch_add(1);
          try {
            never.wait();
          } catch (const ShutdownError&) {
            saw_shutdown_error.fetch_add(1);
          }
        })
        .detach();
    if (!reaches(blocked, 5)) return;
    std::this_thread::sleep_for(20ms);
    const auto start = Clock::now();
    rt.reset();
    destruction_took = Clock::now() - start;
  });
  ASSERT_TRUE(finished) << "destroying a runtime with blocked ULTs hung";
  EXPECT_EQ(saw_shutdown_error.load(), 5);
  EXPECT_LT(destruction_took, kShutdownBound);
}

TEST(Runtime, PrimaryPoolUltBlockedAtShutdownIsWokenToo) {
  std::atomic<bool> saw_shutdown_error{false};
  const bool finished = finishes_within(kShutdownBound, [&] {
    Eventual<> never, started;
    Runtime rt{two_streams()};
    rt.primary_pool()
        .spawn([&] {
          started.set_value();
          try {
            never.wait();
          } catch (const ShutdownError&) {
            saw_shutdown_error = true;
          }
        })
        .detach();
    started.wait();  // runs the primary pool until the ULT has started (and then blocked)
    rt.shutdown();
  });
  ASSERT_TRUE(finished);
  EXPECT_TRUE(saw_shutdown_error.load());
}

TEST(Runtime, WaitStartedDuringShutdownThrowsInsteadOfBlocking) {
  std::atomic<bool> first_woken{false}, second_woken{false};
  const bool finished = finishes_within(kShutdownBound, [&] {
    Eventual<> never, started;
    Runtime rt{two_streams()};
    rt.pool("a")
        .spawn([&] {
          started.set_value();
          try {
            never.wait();
          } catch (const ShutdownError&) {
            first_woken = true;
          }
          try {
            this_ult::sleep_for(1h);  // a cleanup that waits again
          } catch (const ShutdownError&) {
            second_woken = true;
          }
        })
        .detach();
    started.wait();
    std::this_thread::sleep_for(10ms);
    rt.shutdown(1s);
  });
  ASSERT_TRUE(finished) << "a ULT that waited again during shutdown made it hang";
  EXPECT_TRUE(first_woken.load());
  EXPECT_TRUE(second_woken.load());
}

TEST(Runtime, ShutdownRunsReadyUltsToCompletion) {
  std::atomic<int> ran{0};
  const bool finished = finishes_within(kShutdownBound, [&] {
    std::atomic<bool> started{false}, release{false};
    Runtime rt{{.pools = {{.name = "one"}}, .xstreams = {{.name = "solo", .pools = {"one"}}}}};
    const Pool pool = rt.pool("one");
    pool.spawn([&] {
          started = true;
          while (!release) __builtin_ia32_pause();  // holds the stream: the rest stay queued
        })
        .detach();
    while (!started) std::this_thread::yield();
    for (int i = 0; i < 10; ++i) pool.spawn([&] { ran.fetch_add(1); }).detach();
    release = true;
    rt.shutdown();
  });
  ASSERT_TRUE(finished);
  EXPECT_EQ(ran.load(), 10);
}

TEST(Runtime, SpawnAfterShutdownThrowsShutdownError) {
  Runtime rt{two_streams()};
  const Pool pool = rt.pool("a");
  rt.shutdown();
  EXPECT_TRUE(rt.stopping());
  EXPECT_THROW(pool.spawn([] {}), ShutdownError);
}

TEST(Runtime, ShutdownIsIdempotent) {
  Runtime rt{two_streams()};
  rt.pool("a").spawn([] {}).join();
  rt.shutdown();
  rt.shutdown();
  EXPECT_TRUE(rt.stopping());
}  // and the destructor shuts down a third time

TEST(Runtime, ShutdownOfAnIdleRuntimeIsQuick) {
  Runtime rt{two_streams()};
  const auto start = Clock::now();
  rt.shutdown();
  EXPECT_LT(Clock::now() - start, kShutdownBound);
}

}  // namespace
}  // namespace dango::thread
