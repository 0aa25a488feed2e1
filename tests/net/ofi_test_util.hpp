#pragma once
// Helpers of the ofi transport tests: whether the tcp provider exists on this machine, and child
// processes (this test program re-executed to run one child "test") that serve over ofi+tcp.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "dango/common/error.hpp"
#include "dango/net/transport.hpp"

namespace dango::net::testing {

// Empty when ofi+tcp works here; otherwise why not.
inline const std::string& ofi_tcp_unavailable() {
  static const std::string reason = [] {
    try {
      make_transport("ofi+tcp");
      return std::string();
    } catch (const dango::Error& e) {
      return std::string(e.what());
    }
  }();
  return reason;
}

#define DANGO_SKIP_WITHOUT_OFI_TCP()                                                   \
  do {                                                                                 \
    if (!::dango::net::testing::ofi_tcp_unavailable().empty()) {                       \
      GTEST_SKIP() << "libfabric tcp provider unavailable: "                          \
                   << ::dango::net::testing::ofi_tcp_unavailable();                    \
    }                                                                                  \
  } while (0)

// Environment variable telling a re-executed test program which child role to play.
constexpr const char* kChildRoleVariable = "DANGO_OFI_CHILD_ROLE";

// A copy of this test program running one child test (`test_name`, a gtest filter) with
// DANGO_OFI_CHILD_ROLE=`role`; the first line it prints is read as its address. Killed (SIGKILL)
// and reaped when destroyed.
class ChildProcess {
 public:
  ChildProcess(const std::string& test_name, const std::string& role) {
    int out[2];
    if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      ::close(out[0]);
      ::close(out[1]);
      ::setenv(kChildRoleVariable, role.c_str(), 1);
      std::string filter = "--gtest_filter=" + test_name;
      char* argv[] = {const_cast<char*>("/proc/self/exe"), filter.data(), nullptr};
      ::execv("/proc/self/exe", argv);
      ::_exit(127);
    }
    ::close(out[1]);
    out_ = ::fdopen(out[0], "r");
  }
  ~ChildProcess() {
    kill();
    if (out_ != nullptr) ::fclose(out_);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The next line the child printed that starts with "address=", without the prefix; empty
  // when the child exited first.
  std::string read_address() {
    char line[512];
    while (out_ != nullptr && ::fgets(line, sizeof line, out_) != nullptr) {
      std::string text(line);
      if (!text.empty() && text.back() == '\n') text.pop_back();
      if (text.starts_with("address=")) return text.substr(8);
    }
    return {};
  }
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
};

// The role this process was started for, or nothing in the ordinary test run.
inline std::optional<std::string> child_role() {
  const char* role = std::getenv(kChildRoleVariable);
  if (role == nullptr) return std::nullopt;
  return std::string(role);
}

}  // namespace dango::net::testing
