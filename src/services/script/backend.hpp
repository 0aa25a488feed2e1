#pragma once
// The interface every language implements, and the registry that makes an interpreter by
// language name. A language is one file in backends/ plus one line:
//
//   DANGO_REGISTER_SCRIPT_LANGUAGE(lua, LuaBackend);
//
// where LuaBackend derives from Backend and is constructible as
// LuaBackend(const InterpreterConfig& config) (a bad config is a ConfigError naming the key
// relative to the interpreter, such as "memory_limit").
//
// Threading: the provider makes a backend, calls its execute() and destroys it on one OS thread
// only (the interpreter's own thread::WorkerThread), one script at a time.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "dango/services/script/errors.hpp"
#include "dango/services/script/options.hpp"

namespace dango::script {

// Collects what a script prints, up to a limit.
class OutputSink {
 public:
  explicit OutputSink(size_t limit) : limit_(limit) {}
  void append(std::string_view text) {
    const size_t room = limit_ - std::min(limit_, text_.size());
    if (text.size() > room) truncated_ = true;
    text_.append(text.substr(0, room));
  }
  std::string& text() { return text_; }
  bool truncated() const { return truncated_; }

 private:
  size_t limit_;
  std::string text_;
  bool truncated_ = false;
};

// One interpreter: a language runtime's global state, and the running of scripts in it.
class Backend {
 public:
  virtual ~Backend() = default;

  // Runs `code` against this interpreter's global state, with `args` as its global `args`
  // (see Arguments), sending what it prints to `output`, and returns the script's value (see
  // Execution::result). Stops the script once `deadline`
  // passes. Throws script::Error: kScriptError (a compile or run-time error; the message is the
  // interpreter's, with the line), kTimeLimit, kMemoryLimit; the provider puts the
  // interpreter's name in front of the message. Whatever the outcome, the interpreter stays
  // usable, with the changes the script made before it stopped.
  virtual std::string execute(std::string_view code, const Arguments& args,
                              std::chrono::steady_clock::time_point deadline,
                              OutputSink& output) = 0;
};

using BackendFactory = std::function<std::unique_ptr<Backend>(const InterpreterConfig&)>;

// Registers `language`; called at static-initialisation time by the macro below. Aborts on a
// duplicate name.
bool register_language(std::string_view language, BackendFactory factory);
// A new backend (one interpreter's state) for config.language. Throws Error(kUnknownLanguage)
// naming the registered ones, or the language's ConfigError.
std::unique_ptr<Backend> make_backend(const InterpreterConfig& config);

}  // namespace dango::script

#define DANGO_REGISTER_SCRIPT_LANGUAGE(name, Type)                                     \
  [[maybe_unused]] static const bool dango_script_language_##name##_registered =       \
      ::dango::script::register_language(                                              \
          #name, [](const ::dango::script::InterpreterConfig& config)                  \
                     -> std::unique_ptr<::dango::script::Backend> {                    \
            return std::make_unique<Type>(config);                                     \
          })
