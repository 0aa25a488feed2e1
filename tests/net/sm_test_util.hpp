#pragma once
// Helpers of the sm transport tests: environment and directory guards, and forked children
// that report a line (an address) through a pipe and are always reaped.

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

#include "common/temp_dir.hpp"

namespace dango::net::testing {

// Sets an environment variable for the guard's life (sm reads DANGO_SM_* at creation).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = ::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

using dango::testing::TempDir;

// A forked child running `body(write_fd)`; the child _exits with body's return value. The
// destructor kills (SIGKILL) and reaps a child still running.
class ForkedChild {
 public:
  template <class Body>
  explicit ForkedChild(Body body) {
    int fds[2];
    if (::pipe(fds) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(fds[0]);
      int code = 3;
      try {
        code = body(fds[1]);
      } catch (...) {
        code = 2;
      }
      ::_exit(code);
    }
    ::close(fds[1]);
    read_fd_ = fds[0];
  }
  ~ForkedChild() {
    if (read_fd_ >= 0) ::close(read_fd_);
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  ForkedChild(const ForkedChild&) = delete;
  ForkedChild& operator=(const ForkedChild&) = delete;

  pid_t pid() const { return pid_; }
  // One line written by the child (without '\n'); empty when it closed the pipe first.
  std::string read_line() {
    std::string line;
    char ch;
    while (::read(read_fd_, &ch, 1) == 1 && ch != '\n') line += ch;
    return line;
  }
  void kill(int signal = SIGKILL) { ::kill(pid_, signal); }
  // Exit code, 128+signal when killed.
  int wait_exit() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  int read_fd_ = -1;
  bool reaped_ = false;
};

inline void write_line(int fd, const std::string& text) {
  std::string line = text + "\n";
  [[maybe_unused]] auto n = ::write(fd, line.data(), line.size());
}

}  // namespace dango::net::testing
