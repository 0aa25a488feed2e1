// Names of the script error codes.

#include "dango/services/script/errors.hpp"

namespace dango::script {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk:
      return "Ok";
    case ErrorCode::kInvalidArgument:
      return "InvalidArgument";
    case ErrorCode::kUnknownInterpreter:
      return "UnknownInterpreter";
    case ErrorCode::kInterpreterExists:
      return "InterpreterExists";
    case ErrorCode::kUnknownLanguage:
      return "UnknownLanguage";
    case ErrorCode::kScriptError:
      return "ScriptError";
    case ErrorCode::kTimeLimit:
      return "TimeLimit";
    case ErrorCode::kMemoryLimit:
      return "MemoryLimit";
    case ErrorCode::kInternal:
      return "Internal";
  }
  return "Unknown";
}

}  // namespace dango::script
