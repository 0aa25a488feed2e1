#pragma once
// An OS thread of its own for a provider's long store writes. A handler that hands a large put
// of a store taking no short writes (rocksdb, leveldb, lmdb: one write batch) to it waits as a
// ULT, so the provider's execution stream goes on receiving meanwhile: the next requests and
// the bytes of pulls in flight leave the socket instead of stalling their senders until the
// store is done. Writes run one at a time, in the order they were handed over.

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "dango/thread/eventual.hpp"
#include "services/kv/backend.hpp"

namespace dango::kv {

class WriterThread {
 public:
  WriterThread() = default;
  WriterThread(const WriterThread&) = delete;
  WriterThread& operator=(const WriterThread&) = delete;
  ~WriterThread() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

  // Runs `write` on the writer thread (started on first use); the calling ULT waits, yielding,
  // until it returns, and gets its status.
  Status run(const std::function<Status()>& write) {
    Job job{&write, {}, {}};
    {
      std::lock_guard lock(mutex_);
      if (!thread_.joinable()) thread_ = std::thread([this] { serve(); });
      queue_.push_back(&job);
    }
    ready_.notify_one();
    job.done.wait();
    return std::move(job.status);
  }

 private:
  struct Job {
    const std::function<Status()>* write;
    Status status;
    thread::Eventual<> done;
  };

  void serve() {
    std::unique_lock lock(mutex_);
    for (;;) {
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      Job* job = queue_.front();
      queue_.pop_front();
      lock.unlock();
      try {
        job->status = (*job->write)();
      } catch (const std::exception& e) {
        job->status = {ErrorCode::Internal, e.what()};
      }
      job->done.set_value();
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Job*> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace dango::kv
