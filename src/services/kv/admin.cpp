// kv::Admin: database management RPCs.

#include "dango/services/kv/admin.hpp"

#include "services/kv/client_state.hpp"

namespace dango::kv {

namespace {

void check(const p::WireStatus& status, std::string_view address, rpc::ProviderId provider) {
  if (status.code == ErrorCode::Ok) return;
  throw Error(status.code, "kv provider " + std::to_string(provider) + " at " +
                               std::string(address) + ": " + status.message);
}

p::DatabaseSpecWire spec_of(const DatabaseConfig& config) {
  return {.name = config.name, .type = config.type, .config = config.config.dump()};
}

}  // namespace

void Admin::create_database(std::string_view address, rpc::ProviderId provider,
                            const DatabaseConfig& config) {
  auto call = make_target<p::OpenReply(p::DatabaseSpecWire)>(
      engine_, p::kCreateDatabase, engine_.lookup(address), provider, options_);
  check(call(spec_of(config)).status, address, provider);
}

void Admin::open_database(std::string_view address, rpc::ProviderId provider,
                          const DatabaseConfig& config) {
  auto call = make_target<p::OpenReply(p::DatabaseSpecWire)>(
      engine_, p::kOpenDatabase, engine_.lookup(address), provider, options_);
  check(call(spec_of(config)).status, address, provider);
}

void Admin::close_database(std::string_view address, rpc::ProviderId provider,
                           std::string_view name) {
  auto call = make_target<p::WireStatus(std::string)>(engine_, p::kCloseDatabase,
                                                      engine_.lookup(address), provider, options_);
  check(call(std::string(name)), address, provider);
}

void Admin::destroy_database(std::string_view address, rpc::ProviderId provider,
                             std::string_view name) {
  auto call = make_target<p::WireStatus(std::string)>(engine_, p::kDestroyDatabase,
                                                      engine_.lookup(address), provider, options_);
  check(call(std::string(name)), address, provider);
}

std::vector<DatabaseInfo> Admin::list_databases(std::string_view address,
                                                rpc::ProviderId provider) {
  auto call = make_target<p::ListDatabasesReply()>(engine_, p::kListDatabases,
                                                   engine_.lookup(address), provider, options_);
  p::ListDatabasesReply reply = call();
  check(reply.status, address, provider);
  std::vector<DatabaseInfo> out;
  for (size_t i = 0; i < reply.names.size() && i < reply.types.size(); ++i) {
    out.push_back({reply.names[i], reply.types[i]});
  }
  return out;
}

}  // namespace dango::kv
