#pragma once
// kv::Provider: serves key/value databases by RPC. It owns its databases (made from
// ProviderOptions or at run time through kv::Admin), checks every request against its limits,
// and answers every failure with a kv::Error for the caller — it keeps serving after any backend
// error.
//
//   dango::Engine engine{"tcp://0.0.0.0:7000"};
//   dango::kv::Provider kv{engine, 1, dango::kv::ProviderOptions::from_json(config)};
//   engine.wait_for_finalize();

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dango/rpc/provider.hpp"
#include "dango/services/kv/errors.hpp"
#include "dango/services/kv/options.hpp"
#include "dango/services/kv/types.hpp"

namespace dango::kv {

class ProviderState;

class Provider : public rpc::Provider {
 public:
  // Registers the kv RPCs for `provider_id` and opens options.databases. Throws ConfigError
  // (bad options, naming the key), kv::Error (a store cannot be opened: IoError, Corruption...),
  // dango::Error when the provider id is taken.
  Provider(rpc::Engine& engine, rpc::ProviderId provider_id, ProviderOptions options = {},
           thread::Pool pool = {});
  // Stops serving, then closes the databases.
  ~Provider() override;

  // The effective configuration: limits and every open database with its backend's options.
  nlohmann::json config() const;

  // Local administration (kv::Admin does the same by RPC). Throw kv::Error: DatabaseExists,
  // UnknownDatabase, UnknownBackend, IoError...; ConfigError for bad backend options.
  // create: a new store (fails if the name is taken or the store's files already hold data).
  void create_database(const DatabaseConfig& config);
  // open: a store that may already hold data (persistent backends reopen it).
  void open_database(const DatabaseConfig& config);
  // close: stop serving the database, keeping its data.
  void close_database(const std::string& name);
  // destroy: stop serving it and delete its data once in-flight requests are done.
  void destroy_database(const std::string& name);
  std::vector<DatabaseInfo> databases() const;

 private:
  std::unique_ptr<ProviderState> state_;
};

}  // namespace dango::kv
