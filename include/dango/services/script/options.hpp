#pragma once
// Configuration of the script service: the interpreters a provider hosts. Read from JSON with
// from_json (errors name the key path) or built with designated initializers:
//
//   dango::script::ProviderOptions options{
//       .interpreters = {{.name = "main", .language = "lua", .memory_limit = 64 << 20}}};
//
// JSON form (one interpreter may also be given as "interpreter": {...}):
//   {"interpreters": [{"name": "main", "language": "lua", "time_limit_ms": 5000,
//                      "memory_limit": 67108864}],
//    "max_code_size": 1048576, "max_output_size": 1048576}

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace dango::script {

// One interpreter a provider hosts: a language runtime with its own global state, which every
// script run in it reads and changes.
struct InterpreterConfig {
  // The name clients open it by; unique within the provider (default "default").
  std::string name = "default";
  // A registered language: "lua" or "python" (see registered_languages()). Required.
  std::string language{};
  // How long one script may run before it is stopped with ErrorCode::kTimeLimit (default 10 s).
  // The interpreter and its state stay usable afterwards.
  std::chrono::milliseconds time_limit{10000};
  // Bytes the interpreter's heap may hold, state and running scripts together; an allocation
  // past it fails the script with ErrorCode::kMemoryLimit (default 0: no limit). Lua only: the
  // Python runtime has one heap per process, so a nonzero limit is a configuration error there.
  uint64_t memory_limit = 0;

  static InterpreterConfig from_json(const nlohmann::json& json, std::string_view path = "");
  nlohmann::json to_json() const;
};

struct ProviderOptions {
  // The interpreters started with the provider (default none; more can be created at run time
  // through Client::create_interpreter).
  std::vector<InterpreterConfig> interpreters{};
  // Largest script accepted, in bytes (default 1 MiB); a larger one is kInvalidArgument.
  size_t max_code_size = size_t{1} << 20;
  // What a script prints is returned up to this many bytes (default 1 MiB); the rest is dropped
  // and the result says so (Execution::output_truncated).
  size_t max_output_size = size_t{1} << 20;

  static ProviderOptions from_json(const nlohmann::json& json, std::string_view path = "");
  nlohmann::json to_json() const;
};

// Named strings handed to a script with it: the script reads them as the global `args` (Lua: a
// table, `args.key`; Python: a dict, `args["key"]`), set anew before each script. Passing values
// this way rather than pasting them into the code keeps them from being read as code, and lets
// the interpreter reuse the compiled script.
using Arguments = std::map<std::string, std::string>;

// What one script produced.
struct Execution {
  // The script's value: Lua, the values its chunk returns (`return x, y`), each converted with
  // tostring and separated by tabs; Python, str() of its last statement when that statement is
  // an expression other than None (as an interactive interpreter shows it). Empty otherwise.
  std::string result{};
  // What the script printed (Lua `print`, Python `print` / sys.stdout), in order.
  std::string output{};
  // True when the output went past max_output_size and its end was dropped.
  bool output_truncated = false;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(result, output, output_truncated);
  }
};

// One interpreter as a provider lists it.
struct InterpreterInfo {
  std::string name{};
  std::string language{};
  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, language);
  }
  bool operator==(const InterpreterInfo&) const = default;
};

// The languages this process can host ("lua", "python"), sorted.
std::vector<std::string> registered_languages();

}  // namespace dango::script
