#pragma once
// blob::Provider: serves blob targets by RPC. It owns its targets (made from ProviderOptions or
// at run time through Client::create_target), moves data straight between the callers' memory
// and the targets (through registered staging buffers for file targets, pipelined with the
// disk), and answers every failure with a blob::Error for the caller: it keeps serving after any
// target error.
//
//   dango::Engine engine{"tcp://0.0.0.0:7000"};
//   dango::blob::Provider blobs{engine, 2, dango::blob::ProviderOptions::from_json(config)};
//   engine.wait_for_finalize();

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "dango/rpc/provider.hpp"
#include "dango/services/blob/errors.hpp"
#include "dango/services/blob/options.hpp"

namespace dango::blob {

class ProviderState;

class Provider : public rpc::Provider {
 public:
  // Opens options.targets and registers the blob RPCs for `provider_id`. Throws ConfigError
  // (bad options, naming the key), blob::Error (a target cannot be opened: kIoError,
  // kCorruption...), dango::Error when the provider id is taken.
  Provider(rpc::Engine& engine, rpc::ProviderId provider_id, ProviderOptions options = {},
           thread::Pool pool = {});
  // Stops serving, then closes the targets (their files stay).
  ~Provider() override;

  // The effective configuration: every target with its options, defaults filled in.
  nlohmann::json config() const;

  // Local administration (Client does the same by RPC); same errors as there.
  void create_target(const TargetConfig& config);
  void destroy_target(std::string_view name);
  std::vector<TargetInfo> targets() const;

 private:
  std::unique_ptr<ProviderState> state_;
};

}  // namespace dango::blob
