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
#include <stdexcept>
#include <string>
#include <thread>

#include "common/child_process.hpp"
#include "common/scoped_env.hpp"
#include "common/temp_dir.hpp"

namespace dango::net::testing {

using dango::testing::ScopedEnv;

using dango::testing::TempDir;

// A forked child running `body(write_fd)`; the child _exits with body's return value (2 if it
// throws). The destructor kills (SIGKILL) and reaps a child still running.
class ForkedChild {
 public:
  template <class Body>
  explicit ForkedChild(Body body) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
    process_ = dango::testing::ChildPid::fork([&] {
      ::close(fds[0]);
      return body(fds[1]);
    });
    ::close(fds[1]);
    read_fd_ = fds[0];
  }
  ~ForkedChild() {
    if (read_fd_ >= 0) ::close(read_fd_);
  }
  ForkedChild(const ForkedChild&) = delete;
  ForkedChild& operator=(const ForkedChild&) = delete;

  pid_t pid() const { return process_.pid(); }
  // One line written by the child (without '\n'); empty when it closed the pipe first.
  std::string read_line() {
    std::string line;
    char ch;
    while (::read(read_fd_, &ch, 1) == 1 && ch != '\n') line += ch;
    return line;
  }
  void kill(int signal = SIGKILL) { process_.signal(signal); }
  // Exit code, 128+signal when killed.
  int wait_exit() {
    const auto status = process_.wait();
    return status ? dango::testing::ChildPid::exit_code(*status) : -1;
  }

 private:
  dango::testing::ChildPid process_;
  int read_fd_ = -1;
};

inline void write_line(int fd, const std::string& text) {
  std::string line = text + "\n";
  [[maybe_unused]] auto n = ::write(fd, line.data(), line.size());
}

}  // namespace dango::net::testing
