#pragma once
// WorkerThread: an OS thread of its own to which ULTs hand jobs that block or run long (a
// store's large write batch, a script). The ULT that hands a job over waits, yielding, so its
// execution stream goes on serving other ULTs (and the progress loop) meanwhile. Jobs run one at
// a time, in the order they were handed over, always on the same OS thread (so per-thread state
// such as an interpreter's stays valid). The thread starts with the first job.
//
//   dango::thread::WorkerThread worker;
//   Status s = worker.run([&] { return db->Write(options, &batch); });   // from a handler ULT
//
// Cost: two thread hand-offs per job (a wake-up of the worker, then of the waiting ULT): use it
// for jobs that take much longer than that (a trivial script's RPC, which makes one, takes
// 5-6 us more than an empty RPC in dango-bench script). While a job waits for its worker to
// pick it up, the engines' progress loops sleep in the kernel instead of polling
// (jobs_waiting()), so that the worker finds a CPU even when polling threads hold them all.

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>

#include "dango/thread/eventual.hpp"

namespace dango::thread {

class WorkerThread {
 public:
  WorkerThread() = default;
  WorkerThread(const WorkerThread&) = delete;
  WorkerThread& operator=(const WorkerThread&) = delete;
  // Runs the jobs already handed over, then joins the thread.
  ~WorkerThread();

  // Runs `job` on the worker thread; the caller (a ULT, or a plain thread) waits until it
  // returns and gets its result. An exception thrown by `job` is rethrown to the caller.
  template <class Job>
  std::invoke_result_t<Job&> run(Job&& job) {
    using Result = std::invoke_result_t<Job&>;
    if constexpr (std::is_void_v<Result>) {
      hand_over([&] { job(); });
    } else {
      std::optional<Result> result;
      hand_over([&] { result.emplace(job()); });
      return std::move(*result);
    }
  }

  // The worker's id once it has started (std::thread::id() before the first job).
  std::thread::id id() const;

  // How many jobs of every WorkerThread of the process have been handed over and not yet
  // picked up by their worker. A poller that sees one sleeps in the kernel rather than spin:
  // on a node with as many polling threads as CPUs, a worker woken while they spin waits for a
  // scheduler tick (a trivial script took ~100 us instead of ~15 on 2 CPUs). Once the job runs,
  // pollers spin again, and see its caller ready as soon as it returns.
  static size_t jobs_waiting();

 private:
  struct Task {
    void (*call)(void* context);
    void* context;
    Eventual<> done;
  };

  template <class Body>
  void hand_over(Body&& body) {
    Task task{[](void* context) { (*static_cast<Body*>(context))(); }, &body, {}};
    submit(task);
    task.done.wait();  // rethrows what the body threw
  }
  void submit(Task& task);
  void serve();

  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Task*> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace dango::thread
