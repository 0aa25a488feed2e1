#pragma once
// Child processes of the net tests: this test program re-executed to run one "child test" (a
// gtest filter) with a role in the environment. A fresh exec, not a bare fork: libraries that
// keep state per process (libfabric) start clean in the child.

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>

#include "common/child_process.hpp"

namespace dango::net::testing {

// Environment variable telling a re-executed test program which child role to play.
constexpr const char* kChildRoleVariable = "DANGO_NET_CHILD_ROLE";

// A copy of this test program running one child test (`test_name`, a gtest filter) with
// DANGO_NET_CHILD_ROLE=`role`; it reports through lines on its stdout. Killed (SIGKILL) and
// reaped when destroyed, unless it was waited for.
class ChildProcess {
 public:
  ChildProcess(const std::string& test_name, const std::string& role) {
    int out[2];
    if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
    process_ = dango::testing::ChildPid::exec(
        "/proc/self/exe", {"--gtest_filter=" + test_name}, [&] {
          ::dup2(out[1], STDOUT_FILENO);
          ::close(out[0]);
          ::close(out[1]);
          ::setenv(kChildRoleVariable, role.c_str(), 1);
        });
    ::close(out[1]);
    out_ = ::fdopen(out[0], "r");
  }
  ~ChildProcess() {
    kill();
    if (out_ != nullptr) ::fclose(out_);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The next line the child printed that starts with `prefix`, without the prefix; empty when
  // the child exited first.
  std::string read_line(const std::string& prefix = "address=") {
    char line[4096];
    while (out_ != nullptr && ::fgets(line, sizeof line, out_) != nullptr) {
      std::string text(line);
      if (!text.empty() && text.back() == '\n') text.pop_back();
      if (text.starts_with(prefix)) return text.substr(prefix.size());
    }
    return {};
  }
  std::string read_address() { return read_line("address="); }
  // Sends `signal` (SIGSTOP, SIGCONT, ...) to the child.
  void signal(int signal) { process_.signal(signal); }
  void kill() { process_.kill(); }
  // Waits for the child to end; its exit code, or 128+signal when killed.
  int wait_exit() {
    const auto status = process_.wait();
    return status ? dango::testing::ChildPid::exit_code(*status) : -1;
  }

 private:
  dango::testing::ChildPid process_;
  FILE* out_ = nullptr;
};

// The role this process was started for, or nothing in the ordinary test run.
inline std::optional<std::string> child_role() {
  const char* role = std::getenv(kChildRoleVariable);
  if (role == nullptr) return std::nullopt;
  return std::string(role);
}

}  // namespace dango::net::testing
