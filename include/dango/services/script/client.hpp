#pragma once
// The client side of the script service (Dango's POESIE): a Client made from an Engine, and
// Interpreter, the handle on one interpreter of a provider that runs scripts in it.
//
//   dango::script::Client scripts{engine};
//   dango::script::Interpreter lua = scripts.open(address, /*provider*/ 4, "main");
//   lua.execute("count = (count or 0) + 1");
//   std::string n = lua.execute("return count").result;            // "1", then "2", ...
//
// A script is source text in the interpreter's language; it runs against the interpreter's
// global state, which it may read and change for later scripts. Every call blocks the calling
// ULT only. Errors: script::Error (with an ErrorCode) for what the provider refused or what the
// script raised; dango::NetworkError, TimeoutError for transport failures.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dango/rpc/engine.hpp"
#include "dango/rpc/types.hpp"
#include "dango/services/script/errors.hpp"
#include "dango/services/script/options.hpp"

namespace dango::script {

namespace detail {
struct InterpreterHandle;
struct ClientProcedures;
}  // namespace detail

// A handle on one interpreter of one provider; cheap to copy, valid while its Client's engine
// lives.
class Interpreter {
 public:
  Interpreter() = default;

  // Runs `code` in the interpreter (after the scripts sent to it before, one at a time), with
  // `args` as its global `args`, and returns its value and what it printed (one RPC). Throws Error: kScriptError (it did not
  // compile, or raised; the message is the interpreter's, with the line), kTimeLimit (it ran
  // past the interpreter's time_limit and was stopped), kMemoryLimit, kInvalidArgument (larger
  // than the provider's max_code_size), kUnknownInterpreter (destroyed since it was opened).
  Execution execute(std::string_view code, const Arguments& args = {}) const;

  // Where the interpreter lives.
  const std::string& address() const;
  rpc::ProviderId provider_id() const;
  const std::string& name() const;
  bool valid() const { return handle_ != nullptr; }

 private:
  friend class Client;
  explicit Interpreter(std::shared_ptr<const detail::InterpreterHandle> handle)
      : handle_(std::move(handle)) {}
  std::shared_ptr<const detail::InterpreterHandle> handle_;
};

// Makes Interpreter handles and manages the interpreters of a provider. Holds a reference to
// `engine`, which must outlive it and every Interpreter it made.
class Client {
 public:
  explicit Client(rpc::Engine& engine);
  ~Client();
  Client(const Client&);
  Client& operator=(const Client&);

  // A handle on interpreter `name` of provider `provider_id` at `address` (one RPC: checks that
  // it exists). Throws Error(kUnknownInterpreter).
  Interpreter open(std::string_view address, rpc::ProviderId provider_id,
                   std::string_view name) const;

  // Starts an interpreter at run time. Throws Error (kInterpreterExists, kUnknownLanguage) or,
  // for bad options, Error(kInvalidArgument) with the key in the message.
  void create_interpreter(std::string_view address, rpc::ProviderId provider_id,
                          const InterpreterConfig& config) const;
  // Stops interpreter `name` once the scripts already sent to it are done, and drops its
  // state. Throws Error(kUnknownInterpreter).
  void destroy_interpreter(std::string_view address, rpc::ProviderId provider_id,
                           std::string_view name) const;
  // The provider's interpreters, sorted by name.
  std::vector<InterpreterInfo> list_interpreters(std::string_view address,
                                                 rpc::ProviderId provider_id) const;

  rpc::Engine& engine() const { return *engine_; }

 private:
  rpc::Engine* engine_;
  std::shared_ptr<const detail::ClientProcedures> procedures_;
};

}  // namespace dango::script
