#pragma once
// A guard that sets an environment variable and restores its previous value (or unsets it).

#include <stdlib.h>

#include <optional>
#include <string>

namespace dango::testing {

// Sets an environment variable for the guard's life (transports read DANGO_SM_* and
// DANGO_OFI_* when they are created).
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

}  // namespace dango::testing
