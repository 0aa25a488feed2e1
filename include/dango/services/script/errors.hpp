#pragma once
// The errors of the script service. Every failure a caller can see is a dango::script::Error
// carrying an ErrorCode and a message naming the interpreter (and, for a script's own error,
// the interpreter's message with its line number); transport failures stay
// dango::NetworkError / TimeoutError.

#include <cstdint>
#include <string>
#include <string_view>

#include "dango/common/error.hpp"

namespace dango::script {

// What went wrong. Stable numbers: they travel in replies.
enum class ErrorCode : uint8_t {
  kOk = 0,
  kInvalidArgument,     // a malformed request or configuration (code over the size limit, ...)
  kUnknownInterpreter,  // no interpreter by that name at the provider
  kInterpreterExists,   // creating an interpreter whose name is taken
  kUnknownLanguage,     // no language registered under that name
  kScriptError,         // the script did not compile, or raised an error while running
  kTimeLimit,           // the script ran past its interpreter's time limit and was stopped
  kMemoryLimit,         // the script asked for more memory than its interpreter may use
  kInternal,            // a bug or an unexpected condition; the message says more
};

// "ScriptError", "TimeLimit", ...
std::string_view to_string(ErrorCode code);

// A script operation failed; code() says how, what() names the interpreter and the cause.
class Error : public dango::Error {
 public:
  Error(ErrorCode code, const std::string& message) : dango::Error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace dango::script
