#pragma once
// The one owner of a process a test starts (fork, or fork+exec): it sends SIGKILL and reaps the
// child on scope exit unless it was already waited for, so that no test leaves a server or a
// worker behind, even when an assertion fails half-way. The test helpers of each area (net,
// rpc, compose, services) build their process classes on it.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace dango::testing {

class ChildPid {
 public:
  ChildPid() = default;
  ChildPid(ChildPid&& other) noexcept
      : pid_(std::exchange(other.pid_, -1)), status_(other.status_) {}
  ChildPid& operator=(ChildPid&& other) noexcept {
    if (this != &other) {
      kill();
      pid_ = std::exchange(other.pid_, -1);
      status_ = other.status_;
    }
    return *this;
  }
  ChildPid(const ChildPid&) = delete;
  ChildPid& operator=(const ChildPid&) = delete;
  ~ChildPid() { kill(); }

  // Forks; the child runs `body()` and _exits with its return value (2 if it throws). `body`
  // runs in a copy of a possibly multi-threaded process: it should exec, or keep to work that
  // does not need locks another thread may have held at the fork.
  template <class Body>
  static ChildPid fork(Body&& body) {
    ChildPid child;
    child.pid_ = ::fork();
    if (child.pid_ < 0) throw std::runtime_error("fork failed");
    if (child.pid_ == 0) {
      int code = 2;
      try {
        code = body();
      } catch (...) {
      }
      std::_Exit(code);
    }
    return child;
  }

  // Forks and executes `program` with `args`; `in_child`, when given, runs first in the child
  // (redirections, environment). The argument vector is built before the fork. The child exits
  // with 127 when the program cannot be executed.
  static ChildPid exec(const std::string& program, const std::vector<std::string>& args,
                       const std::function<void()>& in_child = {}) {
    std::vector<std::string> strings;
    strings.reserve(args.size() + 1);
    strings.push_back(program);
    strings.insert(strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : strings) argv.push_back(s.data());
    argv.push_back(nullptr);
    return fork([&] {
      if (in_child) in_child();
      ::execv(argv[0], argv.data());
      return 127;
    });
  }

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  // Sends `signal` while the child has not been reaped.
  void signal(int signal) const {
    if (pid_ > 0) ::kill(pid_, signal);
  }
  // SIGKILL, then reaps.
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    reap(0);
  }
  // The child's wait status once it has exited, waiting for it; nothing if it cannot be waited
  // for (never started).
  std::optional<int> wait() {
    if (pid_ > 0) reap(0);
    return status_;
  }
  // The wait status if the child exits within `limit`; nothing while it still runs.
  std::optional<int> wait_for(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (pid_ > 0) {
      if (reap(WNOHANG)) break;
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return status_;
  }

  // The exit code of a wait status, or 128 + the signal that ended the process (as shells say).
  static int exit_code(int status) {
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  // True once the child was reaped (or can no longer be).
  bool reap(int flags) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, flags);
    if (r == 0) return false;
    if (r == pid_) status_ = status;
    pid_ = -1;
    return true;
  }

  pid_t pid_ = -1;
  std::optional<int> status_;
};

}  // namespace dango::testing
