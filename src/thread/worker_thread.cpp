// WorkerThread (see include/dango/thread/worker_thread.hpp): a queue of tasks served by one OS
// thread; each task's Eventual wakes the ULT or thread that handed it over.

#include "dango/thread/worker_thread.hpp"

#include <atomic>

namespace dango::thread {

namespace {
// Jobs handed over and not yet picked up, over every WorkerThread of the process.
std::atomic<size_t> waiting_jobs{0};
}  // namespace

size_t WorkerThread::jobs_waiting() { return waiting_jobs.load(std::memory_order_relaxed); }

WorkerThread::~WorkerThread() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_one();
  if (thread_.joinable()) thread_.join();
}

std::thread::id WorkerThread::id() const {
  std::lock_guard lock(mutex_);
  return thread_.get_id();
}

void WorkerThread::submit(Task& task) {
  {
    std::lock_guard lock(mutex_);
    if (!thread_.joinable()) thread_ = std::thread([this] { serve(); });
    queue_.push_back(&task);
    waiting_jobs.fetch_add(1, std::memory_order_relaxed);
  }
  ready_.notify_one();
}

void WorkerThread::serve() {
  std::unique_lock lock(mutex_);
  for (;;) {
    ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;
    Task* task = queue_.front();
    queue_.pop_front();
    waiting_jobs.fetch_sub(1, std::memory_order_relaxed);
    lock.unlock();
    try {
      task->call(task->context);
      task->done.set_value();
    } catch (...) {
      task->done.set_exception(std::current_exception());
    }
    lock.lock();
  }
}

}  // namespace dango::thread
