#pragma once
// script::Provider: hosts interpreters (Lua, Python) and runs the scripts its clients send in
// them (Dango's POESIE). Each interpreter keeps its global state from one script to the next;
// its scripts run one at a time, in the order they arrive, on an OS thread of the interpreter's
// own, so a long script never holds up the provider's execution stream, and scripts in
// different interpreters run side by side. Every failure (a script's error, its time or memory
// limit, an unknown interpreter) is a script::Error for the caller; the provider serves on.
//
//   dango::Engine engine{"tcp://0.0.0.0:7000"};
//   dango::script::Provider scripts{engine, 4, {.interpreters = {{.name = "main",
//                                                                 .language = "lua"}}}};
//   engine.wait_for_finalize();

#include <memory>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "dango/rpc/provider.hpp"
#include "dango/services/script/errors.hpp"
#include "dango/services/script/options.hpp"

namespace dango::script {

class ProviderState;

class Provider : public rpc::Provider {
 public:
  // Starts options.interpreters and registers the script RPCs for `provider_id`. Throws
  // ConfigError (bad options, naming the key), script::Error (kUnknownLanguage),
  // dango::Error when the provider id is taken.
  Provider(rpc::Engine& engine, rpc::ProviderId provider_id, ProviderOptions options = {},
           thread::Pool pool = {});
  // Stops serving, lets running scripts finish (or reach their time limit), then closes the
  // interpreters.
  ~Provider() override;

  // The effective configuration: every interpreter with its options, defaults filled in.
  nlohmann::json config() const;

  // Local administration (Client does the same by RPC); same errors as there.
  void create_interpreter(const InterpreterConfig& config);
  void destroy_interpreter(std::string_view name);
  std::vector<InterpreterInfo> interpreters() const;

 private:
  std::unique_ptr<ProviderState> state_;
};

}  // namespace dango::script
