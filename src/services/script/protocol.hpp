#pragma once
// The script RPCs as both sides see them: names, signatures and reply types. Client and provider
// use the same signatures, so that a call to a provider in the same process is a plain function
// call (no encoding).

#include <cstdint>
#include <string>
#include <vector>

#include "dango/services/script/errors.hpp"
#include "dango/services/script/options.hpp"

namespace dango::script::protocol {

// Every reply starts with how the call went.
struct Outcome {
  ErrorCode code = ErrorCode::kOk;
  std::string message{};
  bool ok() const { return code == ErrorCode::kOk; }
  template <class Archive>
  void serialize(Archive& ar) {
    ar(code, message);
  }
};

struct ExecuteReply {
  Outcome outcome{};
  Execution execution{};
  template <class Archive>
  void serialize(Archive& ar) {
    ar(outcome, execution);
  }
};

struct ListReply {
  Outcome outcome{};
  std::vector<InterpreterInfo> interpreters{};
  template <class Archive>
  void serialize(Archive& ar) {
    ar(outcome, interpreters);
  }
};

// (interpreter, code, arguments)
inline constexpr const char* kExecute = "script_execute";
using ExecuteRpc = ExecuteReply(std::string, std::string, Arguments);
// (interpreter): whether it exists, before a handle is given out
inline constexpr const char* kOpen = "script_open";
using OpenRpc = Outcome(std::string);
// (InterpreterConfig as JSON text)
inline constexpr const char* kCreateInterpreter = "script_create_interpreter";
using CreateInterpreterRpc = Outcome(std::string);
// (interpreter)
inline constexpr const char* kDestroyInterpreter = "script_destroy_interpreter";
using DestroyInterpreterRpc = Outcome(std::string);
inline constexpr const char* kListInterpreters = "script_list_interpreters";
using ListInterpretersRpc = ListReply();

}  // namespace dango::script::protocol
