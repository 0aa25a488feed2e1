#pragma once
// kv::Admin: manages the databases of a running kv::Provider by RPC — create, open, close,
// destroy and list them by name, besides those of its JSON config.
//
//   dango::kv::Admin admin{engine};
//   admin.create_database(address, 1, {.name = "events", .type = "rocksdb",
//                                      .config = {{"path", "/tmp/events"}}});

#include <string>
#include <string_view>
#include <vector>

#include "dango/rpc/engine.hpp"
#include "dango/services/kv/errors.hpp"
#include "dango/services/kv/options.hpp"
#include "dango/services/kv/types.hpp"

namespace dango::kv {

class Admin {
 public:
  explicit Admin(rpc::Engine& engine, ClientOptions options = {})
      : engine_(engine), options_(options) {}

  // Makes a new database (one RPC). Throws kv::Error: DatabaseExists (name taken, or the store's
  // files already hold data), UnknownBackend, InvalidArgument (bad backend options, naming the
  // key), IoError (path not writable...).
  void create_database(std::string_view address, rpc::ProviderId provider,
                       const DatabaseConfig& config);
  // Serves a database whose store may already hold data (a persistent backend reopens it).
  void open_database(std::string_view address, rpc::ProviderId provider,
                     const DatabaseConfig& config);
  // Stops serving a database and keeps its data. Throws UnknownDatabase.
  void close_database(std::string_view address, rpc::ProviderId provider, std::string_view name);
  // Stops serving a database and deletes its data (once in-flight requests finish).
  void destroy_database(std::string_view address, rpc::ProviderId provider, std::string_view name);
  // The provider's databases, ordered by name.
  std::vector<DatabaseInfo> list_databases(std::string_view address, rpc::ProviderId provider);

 private:
  rpc::Engine& engine_;
  ClientOptions options_;
};

}  // namespace dango::kv
