#pragma once
// Eventual<T>: a value that one ULT sets and others wait for (a one-shot future), resettable.

#include <chrono>
#include <exception>
#include <optional>
#include <utility>

#include "dango/thread/wait.hpp"

namespace dango::thread {

template <typename T = void>
class Eventual {
 public:
  Eventual() = default;
  Eventual(const Eventual&) = delete;
  Eventual& operator=(const Eventual&) = delete;

  // Stores the value and wakes every waiter. Setting twice without reset() is a logic error.
  template <typename... Args>
  void set_value(Args&&... args) {
    value_.emplace(std::forward<Args>(args)...);
    core_.set_ready();
  }
  // Makes wait() rethrow `error`.
  void set_exception(std::exception_ptr error) {
    error_ = std::move(error);
    core_.set_ready();
  }
  // Waits for the value (yielding inside a ULT) and returns it; rethrows a set exception.
  // Throws ShutdownError if the runtime shuts down while waiting.
  T& wait() {
    core_.wait_until();
    return get();
  }
  // Waits at most `timeout`; false when the value did not arrive in time.
  bool wait_for(std::chrono::nanoseconds timeout) {
    return core_.wait_until(std::chrono::steady_clock::now() + timeout);
  }
  bool wait_until(std::chrono::steady_clock::time_point deadline) {
    return core_.wait_until(deadline);
  }
  bool ready() const { return core_.ready(); }
  // The value of a ready Eventual (rethrows a set exception).
  T& get() {
    if (error_) std::rethrow_exception(error_);
    return *value_;
  }
  // Back to not-ready, for reuse. No waiter may be waiting.
  void reset() {
    core_.reset();
    value_.reset();
    error_ = nullptr;
  }

 private:
  detail::EventualCore core_;
  std::optional<T> value_;
  std::exception_ptr error_;
};

template <>
class Eventual<void> {
 public:
  Eventual() = default;
  Eventual(const Eventual&) = delete;
  Eventual& operator=(const Eventual&) = delete;

  void set_value() { core_.set_ready(); }
  void set_exception(std::exception_ptr error) {
    error_ = std::move(error);
    core_.set_ready();
  }
  void wait() {
    core_.wait_until();
    get();
  }
  bool wait_for(std::chrono::nanoseconds timeout) {
    return core_.wait_until(std::chrono::steady_clock::now() + timeout);
  }
  bool wait_until(std::chrono::steady_clock::time_point deadline) {
    return core_.wait_until(deadline);
  }
  bool ready() const { return core_.ready(); }
  void get() {
    if (error_) std::rethrow_exception(error_);
  }
  void reset() {
    core_.reset();
    error_ = nullptr;
  }

 private:
  detail::EventualCore core_;
  std::exception_ptr error_;
};

}  // namespace dango::thread
