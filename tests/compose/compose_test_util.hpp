#pragma once
// Helpers of the composition tests: running dango-daemon / dango-ctl as real processes with
// their output captured, a daemon guard that stops its process even when a test fails, and the
// comparison of an effective configuration with an expected subset.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/child_process.hpp"
#include "common/temp_dir.hpp"

namespace dango::compose::testing {

using namespace std::chrono_literals;

inline std::string bin(const std::string& program) {
  return std::string(DANGO_BIN_DIR) + "/" + program;
}
inline std::string module_dir() { return std::string(DANGO_BINARY_DIR) + "/lib"; }

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

inline void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

using dango::testing::TempDir;

// A child process whose stdin comes from a file and stdout/stderr go to files in `dir`;
// killed (SIGKILL) and reaped on scope exit unless it was waited for.
class Program {
 public:
  Program(const std::string& program, std::vector<std::string> args, const TempDir& dir,
          const std::string& stdin_text = "") {
    static int counter = 0;
    const std::string tag = std::to_string(::getpid()) + "-" + std::to_string(counter++);
    stdout_path_ = dir.file("stdout-" + tag);
    stderr_path_ = dir.file("stderr-" + tag);
    const std::string stdin_path = dir.file("stdin-" + tag);
    write_file(stdin_path, stdin_text);
    process_ = dango::testing::ChildPid::exec(program, args, [&] {
      int in = ::open(stdin_path.c_str(), O_RDONLY);
      int out = ::open(stdout_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err = ::open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(in, 0);
      ::dup2(out, 1);
      ::dup2(err, 2);
    });
  }

  pid_t pid() const { return process_.pid(); }
  void kill(int signal) { process_.signal(signal); }
  // The exit code once the process exited within `limit` (-1 when killed by a signal); nothing
  // if it still runs.
  std::optional<int> wait_exit(std::chrono::milliseconds limit = 20000ms) {
    const auto status = process_.wait_for(limit);
    if (!status) return std::nullopt;
    return WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  }
  std::string out() const { return read_file(stdout_path_); }
  std::string err() const { return read_file(stderr_path_); }

 private:
  dango::testing::ChildPid process_;
  std::string stdout_path_, stderr_path_;
};

// Runs a program to completion; its exit code, stdout and stderr.
struct Result {
  int code = -2;
  std::string out, err;
};
inline Result run(const std::string& program, std::vector<std::string> args, const TempDir& dir,
                  const std::string& stdin_text = "", std::chrono::milliseconds limit = 30000ms) {
  Program p(program, std::move(args), dir, stdin_text);
  auto code = p.wait_exit(limit);
  EXPECT_TRUE(code.has_value()) << program << " did not exit within " << limit.count() << " ms";
  return {code.value_or(-2), p.out(), p.err()};
}

inline Result ctl(const TempDir& dir, std::vector<std::string> args) {
  return run(bin("dango-ctl"), std::move(args), dir);
}

// A dango-daemon started from `config` with --address-file and the test modules on its module
// path; the constructor returns once the address is written (or the daemon exited).
class Daemon {
 public:
  Daemon(const TempDir& dir, const std::string& name, const nlohmann::json& config,
         std::vector<std::string> extra_args = {})
      : address_file_(dir.file(name + ".address")), config_file_(dir.file(name + ".json")) {
    write_file(config_file_, config.dump(2));
    std::vector<std::string> args{"-c",          config_file_,    "--address-file",
                                  address_file_, "--module-path", module_dir()};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    process_.emplace(bin("dango-daemon"), args, dir);
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!std::filesystem::exists(address_file_) && std::chrono::steady_clock::now() < deadline) {
      if (process_->wait_exit(0ms)) break;
      std::this_thread::sleep_for(5ms);
    }
    if (std::filesystem::exists(address_file_)) {
      address_ = read_file(address_file_);
      while (!address_.empty() && address_.back() == '\n') address_.pop_back();
    }
    EXPECT_FALSE(address_.empty()) << "dango-daemon " << name << " wrote no address; stderr:\n"
                                   << process_->err();
  }
  const std::string& address() const { return address_; }
  Program& process() { return *process_; }

 private:
  std::string address_file_, config_file_, address_;
  std::optional<Program> process_;
};

// True when every key of `expected` is in `actual` with a matching value (objects compared
// recursively as subsets; arrays element by element, same length; other values equal).
inline ::testing::AssertionResult contains(const nlohmann::json& actual,
                                           const nlohmann::json& expected,
                                           const std::string& path = "") {
  if (expected.is_object()) {
    if (!actual.is_object())
      return ::testing::AssertionFailure() << path << ": not an object: " << actual;
    for (const auto& [key, value] : expected.items()) {
      if (!actual.contains(key))
        return ::testing::AssertionFailure() << path << "." << key << ": missing";
      auto r = contains(actual[key], value, path + "." + key);
      if (!r) return r;
    }
    return ::testing::AssertionSuccess();
  }
  if (expected.is_array()) {
    if (!actual.is_array() || actual.size() != expected.size()) {
      return ::testing::AssertionFailure()
             << path << ": expected " << expected << ", got " << actual;
    }
    for (size_t i = 0; i < expected.size(); ++i) {
      auto r = contains(actual[i], expected[i], path + "[" + std::to_string(i) + "]");
      if (!r) return r;
    }
    return ::testing::AssertionSuccess();
  }
  if (actual != expected) {
    return ::testing::AssertionFailure() << path << ": expected " << expected << ", got " << actual;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace dango::compose::testing
