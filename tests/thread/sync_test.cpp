// ULT-aware Mutex, ConditionVariable, RwLock and Barrier: exclusion, wake-ups across streams,
// waits that yield instead of blocking the OS thread, timeouts.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "dango/thread/thread.hpp"
#include "thread/thread_test_util.hpp"

namespace dango::thread {
namespace {

using testing::one_stream;
using testing::two_streams;

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;



// ---- Mutex ------------------------------------------------------------------------------------

TEST(Mutex, TryLockFailsWhileHeldAndSucceedsAfterUnlock) {
  Mutex mutex;
  EXPECT_TRUE(mutex.try_lock());
  EXPECT_FALSE(mutex.try_lock());
  mutex.unlock();
  EXPECT_TRUE(mutex.try_lock());
  mutex.unlock();
}

TEST(Mutex, ExcludesUltsOnTwoStreams) {
  Runtime rt{two_streams()};
  Mutex mutex;
  long counter = 0;  // deliberately not atomic: the mutex protects it
  int inside = 0;
  bool overlapped = false;
  std::vector<Ult> ults;
  for (const char* pool : {"a", "b"}) {
    for (int u = 0; u < 8; ++u) {
      ults.push_back(rt.pool(pool).spawn([&] {
        for (int i = 0; i < 500; ++i) {
          std::lock_guard lock(mutex);
          if (++inside != 1) overlapped = true;
          ++counter;
          if (i % 50 == 0) this_ult::yield();  // holding the lock across a switch
          --inside;
        }
      }));
    }
  }
  for (Ult& ult : ults) ult.join();
  EXPECT_EQ(counter, 2 * 8 * 500);
  EXPECT_FALSE(overlapped);
}

TEST(Mutex, LockInsideAUltYieldsToTheUltThatReleasesIt) {
  // One stream: ULT `holder` takes the mutex and waits for a gate; ULT `contender` blocks in
  // lock(); ULT `opener` opens the gate. If lock() blocked the OS thread, `opener` never runs.
  Runtime rt{one_stream()};
  const Pool pool = rt.pool("one");
  Mutex mutex;
  Eventual<> gate;
  std::vector<std::string> trace;
  Ult holder = pool.spawn([&] {
    mutex.lock();
    trace.push_back("holder locked");
    gate.wait();
    trace.push_back("holder unlocks");
    mutex.unlock();
  });
  Ult contender = pool.spawn([&] {
    mutex.lock();
    trace.push_back("contender locked");
    mutex.unlock();
  });
  Ult opener = pool.spawn([&] {
    trace.push_back("opener runs");
    gate.set_value();
  });
  opener.join();
  holder.join();
  contender.join();
  EXPECT_EQ(trace, (std::vector<std::string>{"holder locked", "opener runs", "holder unlocks",
                                             "contender locked"}));
}

TEST(Mutex, PrimaryThreadLockWaitsWhileAUltHoldsIt) {
  Runtime rt{two_streams()};
  Mutex mutex;
  Eventual<> locked;
  std::atomic<bool> released{false};
  Ult holder = rt.pool("a").spawn([&] {
    mutex.lock();
    locked.set_value();
    this_ult::sleep_for(30ms);
    released = true;
    mutex.unlock();
  });
  locked.wait();
  mutex.lock();  // the primary thread, outside any ULT
  EXPECT_TRUE(released.load());
  mutex.unlock();
  holder.join();
}

TEST(Mutex, IsFairToTheLongestWaiter) {
  Runtime rt{one_stream()};
  const Pool pool = rt.pool("one");
  Mutex mutex;
  std::vector<int> order;
  Ult holder = pool.spawn([&] {
    mutex.lock();
    this_ult::sleep_for(10ms);  // the contenders queue up meanwhile, in spawn order
    mutex.unlock();
  });
  std::vector<Ult> contenders;
  for (int i = 0; i < 5; ++i) {
    contenders.push_back(pool.spawn([&, i] {
      std::lock_guard lock(mutex);
      order.push_back(i);
    }));
  }
  holder.join();
  for (Ult& ult : contenders) ult.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

// ---- ConditionVariable ------------------------------------------------------------------------

TEST(ConditionVariable, PingPongsBetweenStreams) {
  Runtime rt{two_streams()};
  Mutex mutex;
  ConditionVariable cv;
  int turn = 0;  // 0: A plays, 1: B plays
  int a_moves = 0, b_moves = 0;
  constexpr int kRounds = 300;
  auto player = [&](int me, int& moves) {
    for (int i = 0; i < kRounds; ++i) {
      std::unique_lock lock(mutex);
      cv.wait(mutex, [&] { return turn == me; });
      ++moves;
      turn = 1 - me;
      cv.notify_all();
    }
  };
  Ult a = rt.pool("a").spawn([&] { player(0, a_moves); });
  Ult b = rt.pool("b").spawn([&] { player(1, b_moves); });
  a.join();
  b.join();
  EXPECT_EQ(a_moves, kRounds);
  EXPECT_EQ(b_moves, kRounds);
}

TEST(ConditionVariable, WaitInsideAUltYieldsToTheNotifierOnTheSameStream) {
  Runtime rt{one_stream()};
  const Pool pool = rt.pool("one");
  Mutex mutex;
  ConditionVariable cv;
  bool flag = false;
  bool woke = false;
  Ult waiter = pool.spawn([&] {
    std::unique_lock lock(mutex);
    woke = cv.wait_for(mutex, 10s, [&] { return flag; });
  });
  Ult notifier = pool.spawn([&] {
    std::unique_lock lock(mutex);
    flag = true;
    cv.notify_one();
  });
  notifier.join();
  waiter.join();
  EXPECT_TRUE(woke);
}

TEST(ConditionVariable, WaitUntilTimesOutAndReacquiresTheMutex) {
  Runtime rt{two_streams()};
  Mutex mutex;
  ConditionVariable cv;
  bool notified = true;
  bool relocked = false;
  Clock::duration waited{};
  rt.pool("a")
      .spawn([&] {
        mutex.lock();
        const auto start = Clock::now();
        notified = cv.wait_until(mutex, start + 30ms);
        waited = Clock::now() - start;
        relocked = !mutex.try_lock();  // held again by this ULT
        mutex.unlock();
      })
      .join();
  EXPECT_FALSE(notified);
  EXPECT_GE(waited, 30ms);
  EXPECT_TRUE(relocked);
  EXPECT_TRUE(mutex.try_lock());
  mutex.unlock();
}

TEST(ConditionVariable, WaitForWithPredicateReturnsFalseWhenItStaysFalse) {
  Runtime rt{two_streams()};
  Mutex mutex;
  ConditionVariable cv;
  bool result = true;
  Clock::duration waited{};
  rt.pool("a")
      .spawn([&] {
        std::unique_lock lock(mutex);
        const auto start = Clock::now();
        result = cv.wait_for(mutex, 20ms, [] { return false; });
        waited = Clock::now() - start;
      })
      .join();
  EXPECT_FALSE(result);
  EXPECT_GE(waited, 20ms);
}

TEST(ConditionVariable, NotifyAllWakesEveryWaiterOnEveryStream) {
  Runtime rt{two_streams()};
  Mutex mutex;
  ConditionVariable cv;
  bool go = false;
  int waiting = 0;
  int woke = 0;
  std::vector<Ult> ults;
  for (const char* pool : {"a", "b"}) {
    for (int i = 0; i < 20; ++i) {
      ults.push_back(rt.pool(pool).spawn([&] {
        std::unique_lock lock(mutex);
        ++waiting;
        cv.wait(mutex, [&] { return go; });
        ++woke;
      }));
    }
  }
  // The primary thread waits (outside a ULT) until all are waiting, then releases them.
  const auto give_up = Clock::now() + 10s;
  for (;;) {
    std::unique_lock lock(mutex);
    if (waiting == 40 || Clock::now() > give_up) break;
    lock.unlock();
    std::this_thread::sleep_for(1ms);
  }
  {
    std::unique_lock lock(mutex);
    go = true;
    cv.notify_all();
  }
  for (Ult& ult : ults) ult.join();
  EXPECT_EQ(woke, 40);
}

TEST(ConditionVariable, NotifyOneWakesOneWaiterAtATime) {
  Runtime rt{one_stream()};
  const Pool pool = rt.pool("one");
  Mutex mutex;
  ConditionVariable cv;
  int tokens = 0;
  int consumed = 0;
  std::vector<Ult> ults;
  for (int i = 0; i < 5; ++i) {
    ults.push_back(pool.spawn([&] {
      std::unique_lock lock(mutex);
      cv.wait(mutex, [&] { return tokens > 0; });
      --tokens;
      ++consumed;
    }));
  }
  for (int i = 0; i < 5; ++i) {
    pool.spawn([&] {
          std::unique_lock lock(mutex);
          ++tokens;
          cv.notify_one();
        })
        .join();
  }
  for (Ult& ult : ults) ult.join();
  EXPECT_EQ(consumed, 5);
  EXPECT_EQ(tokens, 0);
}

// ---- RwLock -----------------------------------------------------------------------------------

TEST(RwLock, ManyReadersHoldItAtOnce) {
  Runtime rt{one_stream()};
  const Pool pool = rt.pool("one");
  RwLock lock;
  constexpr int kReaders = 8;
  std::atomic<int> holding{0};
  int max_holding = 0;
  std::vector<Ult> readers;
  for (int i = 0; i < kReaders; ++i) {
    readers.push_back(pool.spawn([&] {
      std::shared_lock guard(lock);
      ++holding;
      // Stay inside (yielding) until every reader is inside: possible only if they share it.
      const auto give_up = Clock::now() + 5s;
      while (holding.load() < kReaders && Clock::now() < give_up) this_ult::yield();
      max_holding = std::max(max_holding, holding.load());
    }));
  }
  for (Ult& ult : readers) ult.join();
  EXPECT_EQ(max_holding, kReaders);
}

TEST(RwLock, WriterExcludesReadersAndWritersAcrossStreams) {
  Runtime rt{two_streams()};
  RwLock lock;
  std::atomic<int> readers_in{0}, writers_in{0};
  std::atomic<int> violations{0};
  long shared_value = 0;  // written only under the exclusive lock
  std::vector<Ult> ults;
  for (const char* pool : {"a", "b"}) {
    for (int w = 0; w < 3; ++w) {
      ults.push_back(rt.pool(pool).spawn([&] {
        for (int i = 0; i < 200; ++i) {
          std::unique_lock guard(lock);
          if (writers_in.fetch_add(1) != 0 || readers_in.load() != 0) ++violations;
          ++shared_value;
          if (i % 20 == 0) this_ult::yield();
          writers_in.fetch_sub(1);
        }
      }));
    }
    for (int r = 0; r < 5; ++r) {
      ults.push_back(rt.pool(pool).spawn([&] {
        for (int i = 0; i < 200; ++i) {
          std::shared_lock guard(lock);
          readers_in.fetch_add(1);
          if (writers_in.load() != 0) ++violations;
          if (i % 20 == 0) this_ult::yield();
          readers_in.fetch_sub(1);
        }
      }));
    }
  }
  for (Ult& ult : ults) ult.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(shared_value, 2 * 3 * 200);
}

TEST(RwLock, TryLocksFailAgainstTheOtherMode) {
  RwLock lock;
  lock.lock_shared();
  EXPECT_FALSE(lock.try_lock());
  EXPECT_TRUE(lock.try_lock_shared());
  lock.unlock_shared();
  lock.unlock_shared();
  lock.lock();
  EXPECT_FALSE(lock.try_lock_shared());
  EXPECT_FALSE(lock.try_lock());
  lock.unlock();
  EXPECT_TRUE(lock.try_lock());
  lock.unlock();
}

TEST(RwLock, WaitingWriterKeepsNewReadersOut) {
  // One FIFO stream: `reader` takes the lock shared and parks on a gate, `writer` blocks in
  // lock(), then `checker` runs: a new reader must not get in ahead of the waiting writer.
  Runtime rt{one_stream()};
  const Pool pool = rt.pool("one");
  RwLock lock;
  Eventual<> gate;
  bool new_reader_got_in = true;
  std::vector<std::string> trace;
  Ult reader = pool.spawn([&] {
    lock.lock_shared();
    gate.wait();
    trace.push_back("reader out");
    lock.unlock_shared();
  });
  Ult writer = pool.spawn([&] {
    lock.lock();
    trace.push_back("writer in");
    lock.unlock();
  });
  Ult checker = pool.spawn([&] {
    new_reader_got_in = lock.try_lock_shared();
    if (new_reader_got_in) lock.unlock_shared();
    gate.set_value();
  });
  checker.join();
  reader.join();
  writer.join();
  EXPECT_FALSE(new_reader_got_in);
  EXPECT_EQ(trace, (std::vector<std::string>{"reader out", "writer in"}));
}

TEST(RwLock, WriterIsNotStarvedByOverlappingReaders) {
  Runtime rt{two_streams()};
  RwLock lock;
  std::atomic<bool> writer_done{false};
  std::atomic<int> reader_rounds{0};
  const auto give_up = Clock::now() + 5s;
  std::vector<Ult> readers;
  // Readers on both streams re-enter continuously, overlapping, so that without writer
  // preference some reader would always hold the lock.
  for (const char* pool : {"a", "b"}) {
    for (int r = 0; r < 4; ++r) {
      readers.push_back(rt.pool(pool).spawn([&] {
        while (!writer_done && Clock::now() < give_up) {
          std::shared_lock guard(lock);
          reader_rounds.fetch_add(1);
          this_ult::yield();
        }
      }));
    }
  }
  Clock::time_point acquired_at{};
  Ult writer = rt.pool("a").spawn([&] {
    while (reader_rounds.load() < 100 && Clock::now() < give_up) this_ult::yield();
    std::unique_lock guard(lock);
    acquired_at = Clock::now();
    writer_done = true;
  });
  writer.join();
  for (Ult& ult : readers) ult.join();
  EXPECT_TRUE(writer_done.load());
  EXPECT_LT(acquired_at, give_up) << "the writer only got in once the readers gave up";
}

// ---- Barrier ----------------------------------------------------------------------------------

TEST(Barrier, SynchronisesUltsAcrossStreamsForManyRounds) {
  Runtime rt{two_streams()};
  constexpr int kPerPool = 3;
  constexpr int kParticipants = 2 * kPerPool;
  constexpr int kRounds = 50;
  Barrier barrier(kParticipants);
  std::vector<std::atomic<int>> arrived(kRounds);
  std::vector<std::atomic<int>> last(kRounds);
  std::atomic<int> early{0};
  std::vector<Ult> ults;
  for (const char* pool : {"a", "b"}) {
    for (int p = 0; p < kPerPool; ++p) {
      ults.push_back(rt.pool(pool).spawn([&] {
        for (int round = 0; round < kRounds; ++round) {
          arrived[round].fetch_add(1);
          if (barrier.arrive_and_wait()) last[round].fetch_add(1);
          // Past the barrier, everyone of this round has arrived.
          if (arrived[round].load() != kParticipants) early.fetch_add(1);
        }
      }));
    }
  }
  for (Ult& ult : ults) ult.join();
  EXPECT_EQ(early.load(), 0);
  for (int round = 0; round < kRounds; ++round) {
    EXPECT_EQ(last[round].load(), 1) << "round " << round;
  }
}

TEST(Barrier, WaitInsideAUltYieldsToTheOtherParticipantsOnTheSameStream) {
  Runtime rt{one_stream()};
  const Pool pool = rt.pool("one");
  Barrier barrier(3);
  std::atomic<int> passed{0};
  std::vector<Ult> ults;
  for (int i = 0; i < 3; ++i) {
    ults.push_back(pool.spawn([&] {
      for (int round = 0; round < 10; ++round) barrier.arrive_and_wait();
      passed.fetch_add(1);
    }));
  }
  for (Ult& ult : ults) ult.join();
  EXPECT_EQ(passed.load(), 3);
}

TEST(Barrier, OfOneNeverWaits) {
  Barrier barrier(1);
  EXPECT_TRUE(barrier.arrive_and_wait());
  EXPECT_TRUE(barrier.arrive_and_wait());
}

}  // namespace
}  // namespace dango::thread
