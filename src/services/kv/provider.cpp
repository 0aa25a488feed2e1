// kv::Provider: registers the kv RPCs and owns the database table (ProviderState).

#include "dango/services/kv/provider.hpp"

#include <spdlog/spdlog.h>

#include "dango/common/config.hpp"
#include "dango/common/log.hpp"
#include "services/kv/provider_state.hpp"

namespace dango::kv {

namespace p = protocol;

namespace {
constexpr const char* kRpcNames[] = {p::kOpen,
                                     p::kPut,
                                     p::kGet,
                                     p::kLength,
                                     p::kErase,
                                     p::kList,
                                     p::kCount,
                                     p::kCreateDatabase,
                                     p::kOpenDatabase,
                                     p::kCloseDatabase,
                                     p::kDestroyDatabase,
                                     p::kListDatabases};
}  // namespace

ProviderState::ProviderState(rpc::Engine& engine, ProviderOptions options)
    : engine_(engine), options_(std::move(options)), buffers_(engine) {
  for (size_t i = 0; i < options_.databases.size(); ++i) {
    const DatabaseConfig& db = options_.databases[i];
    for (size_t j = 0; j < i; ++j) {
      if (options_.databases[j].name == db.name) {
        dango::config::fail(dango::config::join(dango::config::join("databases", i), "name"),
                            "duplicate database name \"" + db.name + "\"");
      }
    }
  }
  std::vector<DatabaseConfig> initial = std::move(options_.databases);
  options_.databases.clear();
  for (size_t i = 0; i < initial.size(); ++i) {
    const std::string& path = initial[i].config_path;
    add_database(initial[i], false,
                 path.empty() ? "databases[" + std::to_string(i) + "].config" : path);
  }
}

void ProviderState::add_database(const DatabaseConfig& config, bool must_create,
                                 const std::string& config_path) {
  std::lock_guard admin(admin_mutex_);
  if (config.name.empty()) throw Error(ErrorCode::InvalidArgument, "a database needs a name");
  {
    std::shared_lock lock(table_mutex_);
    if (by_name_.count(config.name) != 0) {
      throw Error(ErrorCode::DatabaseExists,
                  "database \"" + config.name + "\" already exists at this provider");
    }
  }
  BackendContext context{
      .name = config.name, .config_path = config_path, .must_create = must_create};
  std::shared_ptr<Backend> backend = make_backend(config.type, config.config, context);
  std::unique_lock lock(table_mutex_);
  const p::DatabaseId id = next_id_++;
  by_id_.emplace(id, backend);
  by_name_.emplace(config.name, Entry{id, config, std::move(backend)});
  log::get("kv")->info("database \"{}\" ({}) open", config.name, config.type);
}

void ProviderState::close_database(const std::string& name, bool destroy) {
  std::lock_guard admin(admin_mutex_);
  std::shared_ptr<Backend> backend;
  {
    std::unique_lock lock(table_mutex_);
    auto it = by_name_.find(name);
    if (it == by_name_.end()) {
      throw Error(ErrorCode::UnknownDatabase, "no database \"" + name + "\" at this provider");
    }
    backend = std::move(it->second.backend);
    by_id_.erase(it->second.id);
    by_name_.erase(it);
  }
  // The store closes (and its files go) when the last in-flight request drops its reference.
  if (destroy) backend->destroy_when_closed();
}

void ProviderState::close_all() {
  std::unique_lock lock(table_mutex_);
  by_id_.clear();
  by_name_.clear();
}

std::vector<DatabaseInfo> ProviderState::databases() const {
  std::shared_lock lock(table_mutex_);
  std::vector<DatabaseInfo> out;
  for (const auto& [name, entry] : by_name_) out.push_back({name, entry.config.type});
  return out;
}

nlohmann::json ProviderState::config() const {
  nlohmann::json out = options_.to_json();
  std::shared_lock lock(table_mutex_);
  for (const auto& [name, entry] : by_name_) {
    DatabaseConfig effective = entry.config;
    effective.config = entry.backend->config();
    out["databases"].push_back(effective.to_json());
  }
  return out;
}

std::shared_ptr<Backend> ProviderState::find(p::DatabaseId id) const {
  std::shared_lock lock(table_mutex_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) {
    throw Error(ErrorCode::UnknownDatabase,
                "no database with handle " + std::to_string(id) +
                    " at this provider (closed or destroyed; open it again by name)");
  }
  return it->second;
}

void log_failure(const p::WireStatus& status) {
  const bool store_trouble = status.code == ErrorCode::IoError ||
                             status.code == ErrorCode::Corruption ||
                             status.code == ErrorCode::Internal;
  log::get("kv")->log(store_trouble ? spdlog::level::warn : spdlog::level::debug, "{}: {}",
                      to_string(status.code), status.message);
}

// --- Provider ----------------------------------------------------------------------------------

Provider::Provider(rpc::Engine& engine, rpc::ProviderId provider_id, ProviderOptions options,
                   thread::Pool pool)
    : rpc::Provider(engine, provider_id, pool),
      state_(std::make_unique<ProviderState>(engine, std::move(options))) {
  ProviderState* s = state_.get();
  define(p::kOpen, [s](const std::string& name) { return s->open(name); });
  define(p::kPut, [s](const rpc::Request& r, const p::PutArgs& a) { return s->put(r, a); });
  define(p::kGet, [s](const rpc::Request& r, const p::GetArgs& a) { return s->get(r, a); });
  define(p::kLength, [s](const rpc::Request& r, const p::KeysArgs& a) { return s->length(r, a); });
  define(p::kErase, [s](const rpc::Request& r, const p::KeysArgs& a) { return s->erase(r, a); });
  define(p::kList, [s](const p::ListArgs& a) { return s->list(a); });
  define(p::kCount, [s](p::DatabaseId db) { return s->count(db); });
  define(p::kCreateDatabase, [s](const p::DatabaseSpecWire& d) { return s->admin_add(d, true); });
  define(p::kOpenDatabase, [s](const p::DatabaseSpecWire& d) { return s->admin_add(d, false); });
  define(p::kCloseDatabase, [s](const std::string& n) { return s->admin_close(n, false); });
  define(p::kDestroyDatabase, [s](const std::string& n) { return s->admin_close(n, true); });
  define(p::kListDatabases, [s] { return s->admin_list(); });
}

Provider::~Provider() {
  // Stop serving before the state goes (the base class would deregister only after it).
  for (const char* name : kRpcNames) engine().deregister(name, provider_id());
  state_->close_all();
}

nlohmann::json Provider::config() const { return state_->config(); }
void Provider::create_database(const DatabaseConfig& config) {
  state_->add_database(config, true, "config");
}
void Provider::open_database(const DatabaseConfig& config) {
  state_->add_database(config, false, "config");
}
void Provider::close_database(const std::string& name) { state_->close_database(name, false); }
void Provider::destroy_database(const std::string& name) { state_->close_database(name, true); }
std::vector<DatabaseInfo> Provider::databases() const { return state_->databases(); }

}  // namespace dango::kv
