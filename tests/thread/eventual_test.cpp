// Eventual<T>: set once, waited for by ULTs on any stream, by the primary thread (which runs
// the primary pool meanwhile) and by plain OS threads; timeouts, exceptions, reuse.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
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


TEST(Eventual, StartsNotReadyAndIsReadyOnceSet) {
  Eventual<int> ev;
  EXPECT_FALSE(ev.ready());
  ev.set_value(3);
  EXPECT_TRUE(ev.ready());
  EXPECT_EQ(ev.get(), 3);
  EXPECT_EQ(ev.wait(), 3);  // already set: returns at once, also outside any runtime
}

TEST(Eventual, UltOnOneStreamWakesWhenAUltOnAnotherStreamSetsIt) {
  Runtime rt{two_streams()};
  Eventual<std::string> ev;
  std::string got;
  std::thread::id waiter_thread, setter_thread;
  Ult waiter = rt.pool("a").spawn([&] {
    waiter_thread = std::this_thread::get_id();
    got = ev.wait();
  });
  Ult setter = rt.pool("b").spawn([&] {
    setter_thread = std::this_thread::get_id();
    this_ult::sleep_for(20ms);  // let the waiter block first
    ev.set_value("across streams");
  });
  setter.join();
  waiter.join();
  EXPECT_EQ(got, "across streams");
  EXPECT_NE(waiter_thread, setter_thread);
}

TEST(Eventual, WaitInsideAUltLetsAnotherUltOnTheSameStreamRun) {
  // One stream only: if the wait blocked the OS thread, the setter could never run.
  Runtime rt{{.pools = {{.name = "one"}}, .xstreams = {{.name = "solo", .pools = {"one"}}}}};
  const Pool pool = rt.pool("one");
  Eventual<int> ev;
  bool arrived = false;
  int got = 0;
  Ult waiter = pool.spawn([&] {
    arrived = ev.wait_for(10s);
    if (arrived) got = ev.get();
  });
  Ult setter = pool.spawn([&] { ev.set_value(11); });
  setter.join();
  waiter.join();
  EXPECT_TRUE(arrived);
  EXPECT_EQ(got, 11);
}

TEST(Eventual, WaitForTimesOutThenALaterSetIsSeen) {
  Runtime rt{two_streams()};
  Eventual<int> ev;
  bool first = true;
  Clock::duration waited{};
  int later = 0;
  Ult waiter = rt.pool("a").spawn([&] {
    const auto start = Clock::now();
    first = ev.wait_for(30ms);
    waited = Clock::now() - start;
    later = ev.wait();
  });
  Ult setter = rt.pool("b").spawn([&] {
    this_ult::sleep_for(100ms);
    ev.set_value(5);
  });
  waiter.join();
  setter.join();
  EXPECT_FALSE(first);
  EXPECT_GE(waited, 30ms);
  EXPECT_EQ(later, 5);
}

TEST(Eventual, WaitUntilAPassedDeadlineReturnsFalse) {
  Runtime rt{two_streams()};
  Eventual<int> ev;
  bool arrived = true;
  rt.pool("a").spawn([&] { arrived = ev.wait_until(Clock::now() - 1ms); }).join();
  EXPECT_FALSE(arrived);
}

TEST(Eventual, WaitForOnAReadyEventualReturnsTrue) {
  Eventual<int> ev;
  ev.set_value(1);
  EXPECT_TRUE(ev.wait_for(0ns));
}

TEST(Eventual, VoidEventualWakesItsWaiter) {
  Runtime rt{two_streams()};
  Eventual<> ev;
  bool woke = false;
  Ult waiter = rt.pool("a").spawn([&] {
    ev.wait();
    woke = true;
  });
  Ult setter = rt.pool("b").spawn([&] {
    this_ult::sleep_for(10ms);
    ev.set_value();
  });
  setter.join();
  waiter.join();
  EXPECT_TRUE(woke);
  EXPECT_TRUE(ev.ready());
}

TEST(Eventual, VoidEventualWaitForTimesOut) {
  Runtime rt{two_streams()};
  Eventual<void> ev;
  bool arrived = true;
  Clock::duration waited{};
  rt.pool("a")
      .spawn([&] {
        const auto start = Clock::now();
        arrived = ev.wait_for(20ms);
        waited = Clock::now() - start;
      })
      .join();
  EXPECT_FALSE(arrived);
  EXPECT_GE(waited, 20ms);
}

TEST(Eventual, SetExceptionMakesWaitRethrowInTheWaiter) {
  Runtime rt{two_streams()};
  Eventual<int> ev;
  Eventual<> void_ev;
  std::string caught, void_caught;
  Ult waiter = rt.pool("a").spawn([&] {
    try {
      ev.wait();
    } catch (const RemoteError& e) {
      caught = e.what();
    }
    try {
      void_ev.wait();
    } catch (const std::logic_error& e) {
      void_caught = e.what();
    }
  });
  Ult setter = rt.pool("b").spawn([&] {
    ev.set_exception(std::make_exception_ptr(RemoteError("remote failed")));
    void_ev.set_exception(std::make_exception_ptr(std::logic_error("void failed")));
  });
  setter.join();
  waiter.join();
  EXPECT_EQ(caught, "remote failed");
  EXPECT_EQ(void_caught, "void failed");
}

TEST(Eventual, ResetAllowsPingPongBetweenStreams) {
  Runtime rt{two_streams()};
  constexpr int kRounds = 300;
  Eventual<int> ping, pong;
  int sum = 0;
  Ult a = rt.pool("a").spawn([&] {
    for (int i = 0; i < kRounds; ++i) {
      const int v = ping.wait();
      ping.reset();
      pong.set_value(v + 1);
    }
  });
  Ult b = rt.pool("b").spawn([&] {
    for (int i = 0; i < kRounds; ++i) {
      ping.set_value(i);
      sum += pong.wait();
      pong.reset();
    }
  });
  a.join();
  b.join();
  EXPECT_EQ(sum, kRounds * (kRounds - 1) / 2 + kRounds);
}

TEST(Eventual, OneSetWakesEveryWaiterOnEveryStream) {
  Runtime rt{two_streams()};
  constexpr int kWaitersPerPool = 50;
  Eventual<int> ev;
  std::atomic<int> total{0};
  std::vector<Ult> ults;
  for (const char* pool : {"a", "b"}) {
    for (int i = 0; i < kWaitersPerPool; ++i) {
      ults.push_back(rt.pool(pool).spawn([&] { total += ev.wait(); }));
    }
  }
  std::this_thread::sleep_for(10ms);  // most waiters are blocked by now (not required)
  ev.set_value(2);                    // from the primary thread
  for (Ult& ult : ults) ult.join();
  EXPECT_EQ(total.load(), 2 * 2 * kWaitersPerPool);
}

TEST(Eventual, HoldsMoveOnlyValues) {
  Runtime rt{two_streams()};
  Eventual<std::unique_ptr<int>> ev;
  rt.pool("a").spawn([&] { ev.set_value(std::make_unique<int>(9)); }).join();
  std::unique_ptr<int> taken = std::move(ev.wait());
  ASSERT_TRUE(taken);
  EXPECT_EQ(*taken, 9);
}

TEST(Eventual, PrimaryThreadWaitingRunsThePrimaryPoolsUlts) {
  Runtime rt;  // no other stream: only the waiting primary thread can run the setter
  Eventual<int> ev;
  std::thread::id setter_thread;
  rt.primary_pool()
      .spawn([&] {
        setter_thread = std::this_thread::get_id();
        ev.set_value(21);
      })
      .detach();
  ASSERT_TRUE(ev.wait_for(10s)) << "the primary thread did not run its pool while waiting";
  EXPECT_EQ(ev.wait(), 21);
  EXPECT_EQ(setter_thread, std::this_thread::get_id());
}

TEST(Eventual, PrimaryThreadWaitingRunsAUltThatItselfWaits) {
  Runtime rt{two_streams()};
  Eventual<int> from_b, result;
  rt.primary_pool().spawn([&] { result.set_value(from_b.wait() * 2); }).detach();
  rt.pool("b")
      .spawn([&] {
        this_ult::sleep_for(10ms);
        from_b.set_value(4);
      })
      .detach();
  ASSERT_TRUE(result.wait_for(10s));
  EXPECT_EQ(result.get(), 8);
}

TEST(Eventual, PlainThreadWaitsForAValueSetByAUlt) {
  Runtime rt{two_streams()};
  Eventual<int> ev;
  int got = 0;
  std::thread plain([&] { got = ev.wait(); });  // not a stream of the runtime
  Ult setter = rt.pool("a").spawn([&] {
    this_ult::sleep_for(20ms);
    ev.set_value(13);
  });
  setter.join();
  plain.join();
  EXPECT_EQ(got, 13);
}

TEST(Eventual, PlainThreadWaitForTimesOut) {
  Eventual<int> ev;
  bool arrived = true;
  Clock::duration waited{};
  std::thread plain([&] {
    const auto start = Clock::now();
    arrived = ev.wait_for(20ms);
    waited = Clock::now() - start;
  });
  plain.join();
  EXPECT_FALSE(arrived);
  EXPECT_GE(waited, 20ms);
}

TEST(Eventual, UltWaitsForAValueSetByAPlainThread) {
  Runtime rt{two_streams()};
  Eventual<int> ev;
  int got = 0;
  Ult waiter = rt.pool("a").spawn([&] { got = ev.wait(); });
  std::thread plain([&] {
    std::this_thread::sleep_for(20ms);
    ev.set_value(17);
  });
  waiter.join();
  plain.join();
  EXPECT_EQ(got, 17);
}

}  // namespace
}  // namespace dango::thread
