// A process built from its configuration: start in dependency order, stop in reverse, and the
// administration RPCs (query, list, add, remove, shutdown).

#include "dango/compose/process.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <mutex>

#include "dango/common/config.hpp"
#include "dango/common/log.hpp"
#include "dango/compose/admin.hpp"
#include "dango/services/monitor/monitoring.hpp"
#include "dango/thread/eventual.hpp"
#include "dango/thread/sync.hpp"
#include "running_provider.hpp"

namespace dango::compose {

struct Process::Impl {
  ProcessConfig config;
  ProcessOptions options;
  std::unique_ptr<rpc::Engine> engine;
  std::unique_ptr<monitor::Monitoring> monitoring;
  std::unique_ptr<GroupMembership> group;
  mutable thread::Mutex mutex;           // guards `running` (handlers add and remove)
  std::vector<RunningProvider> running;  // in start order
  thread::Eventual<void> stop_requested;
  std::atomic<bool> stop_asked{false};
  std::atomic<bool> stopped{false};

  std::string pool_name(const ProviderConfig& p) const {
    return p.pool.empty() ? engine->options().threads.rpc_pool : p.pool;
  }
  void start_provider(const ProviderConfig& provider, const std::string& path);
  nlohmann::json describe(const RunningProvider& p) const;
  void define_admin_rpcs(Process& process);
  void stop_providers();
};

namespace {

auto logger() { return log::get("compose"); }

// Handlers report a rejected configuration with this mark, so that AdminClient rethrows it as
// a ConfigError (see admin_client.cpp).
template <class F>
auto marking_config_errors(F&& body) {
  try {
    return body();
  } catch (const ConfigError& e) {
    throw std::runtime_error(std::string("config error: ") + e.what());
  }
}

}  // namespace

void Process::Impl::start_provider(const ProviderConfig& provider, const std::string& path) {
  const Module& module =
      load_module(provider.type, options.module_path, config::join(path, "type"));
  RunningProvider entry;
  entry.config = provider;
  entry.dependencies = resolve_dependencies(provider, path, module, running, *engine, group.get(),
                                            options.dependency_timeout);
  ComponentArgs args{.engine = *engine,
                     .name = provider.name,
                     .provider_id = provider.provider_id,
                     .pool = engine->runtime().pool(pool_name(provider)),
                     .config = provider.config,
                     .config_path = config::join(path, "config"),
                     .dependencies = entry.dependencies};
  entry.component = module.create(args);
  if (!entry.component) throw Error(path + ": module \"" + provider.type + "\" made no provider");
  logger()->info("started provider \"{}\" (type {}, id {})", provider.name, provider.type,
                 provider.provider_id);
  running.push_back(std::move(entry));
}

nlohmann::json Process::Impl::describe(const RunningProvider& p) const {
  nlohmann::json entry = p.config.to_json();
  entry["pool"] = pool_name(p.config);
  entry["config"] = p.component->config();
  nlohmann::json resolved = nlohmann::json::object();
  for (const auto& [slot, deps] : p.dependencies) {
    resolved[slot] = nlohmann::json::array();
    for (const auto& dep : deps) resolved[slot].push_back(dep.to_json());
  }
  entry["resolved_dependencies"] = resolved;
  return entry;
}

void Process::Impl::stop_providers() {
  std::lock_guard lock(mutex);
  while (!running.empty()) {
    RunningProvider& last = running.back();
    try {
      last.component->stop();
    } catch (const std::exception& e) {
      logger()->error("provider \"{}\" failed to stop: {}", last.config.name, e.what());
    }
    logger()->info("stopped provider \"{}\"", last.config.name);
    running.pop_back();
  }
}

void Process::Impl::define_admin_rpcs(Process& process) {
  engine->define(kQueryRpc, [&process] { return process.query().dump(); });
  engine->define(kListProvidersRpc, [&process] { return process.list_providers().dump(); });
  engine->define(kAddProviderRpc, [&process](const std::string& text) {
    return marking_config_errors([&] {
      nlohmann::json json;
      try {
        json = nlohmann::json::parse(text);
      } catch (const nlohmann::json::parse_error& e) {
        throw ConfigError(std::string("provider: invalid JSON: ") + e.what());
      }
      return process.add_provider(json).dump();
    });
  });
  engine->define(kRemoveProviderRpc, [&process](const std::string& name) {
    marking_config_errors([&] {
      process.remove_provider(name);
      return 0;
    });
  });
  engine->define(kShutdownRpc, [&process] { process.request_stop(); });
}

Process::Process(ProcessConfig config, ProcessOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->config = std::move(config);
  impl_->options = std::move(options);
  impl_->engine = std::make_unique<rpc::Engine>(impl_->config.engine);
  try {
    if (impl_->config.monitoring) {
      impl_->monitoring =
          std::make_unique<monitor::Monitoring>(*impl_->engine, *impl_->config.monitoring);
    }
    if (!impl_->config.group.is_null()) {
      impl_->group = group_support()->join(*impl_->engine, impl_->config.group, "group");
    }
    std::lock_guard lock(impl_->mutex);
    for (size_t i : start_order(impl_->config.providers)) {
      impl_->start_provider(impl_->config.providers[i], config::join("providers", i));
    }
  } catch (...) {
    stop();
    throw;
  }
  impl_->define_admin_rpcs(*this);
}

Process::~Process() { stop(); }

rpc::Engine& Process::engine() { return *impl_->engine; }
const std::string& Process::address() const { return impl_->engine->address(); }

nlohmann::json Process::query() const {
  nlohmann::json json = impl_->engine->options().to_json();
  const auto& addresses = impl_->engine->addresses();
  json["transport"] =
      addresses.size() == 1 ? nlohmann::json(addresses.front()) : nlohmann::json(addresses);
  if (impl_->config.monitoring) {
    json["monitoring"] = impl_->config.monitoring->to_json();
    if (impl_->monitoring && !impl_->monitoring->prometheus_address().empty()) {
      json["monitoring"]["prometheus"] = impl_->monitoring->prometheus_address();
    }
  }
  if (impl_->group) json["group"] = impl_->group->config();
  json["providers"] = nlohmann::json::array();
  std::lock_guard lock(impl_->mutex);
  for (const auto& p : impl_->running) json["providers"].push_back(impl_->describe(p));
  return json;
}

nlohmann::json Process::list_providers() const {
  nlohmann::json list = nlohmann::json::array();
  std::lock_guard lock(impl_->mutex);
  for (const auto& p : impl_->running) {
    list.push_back({{"name", p.config.name},
                    {"type", p.config.type},
                    {"provider_id", p.config.provider_id},
                    {"pool", impl_->pool_name(p.config)}});
  }
  return list;
}

nlohmann::json Process::add_provider(const nlohmann::json& json) {
  if (impl_->stop_asked.load()) throw ConfigError("provider: the process is stopping");
  bool has_id = false;
  ProviderConfig provider = ProviderConfig::from_json(json, "provider", &has_id);
  std::lock_guard lock(impl_->mutex);
  std::vector<ProviderConfig> existing;
  for (const auto& p : impl_->running) existing.push_back(p.config);
  if (!has_id) {
    provider.provider_id = 1;
    while (std::any_of(existing.begin(), existing.end(),
                       [&](auto& p) { return p.provider_id == provider.provider_id; })) {
      ++provider.provider_id;
    }
  }
  std::vector<std::string> pools;
  for (const auto& pool : impl_->engine->runtime().pools()) pools.emplace_back(pool.name());
  validate_provider(provider, "provider", existing, pools, impl_->options.module_path);
  for (const auto& [slot, refs] : provider.dependencies) {
    for (const auto& ref : refs) {
      if (ref.where == DependencyRef::Where::kGroup && !impl_->group) {
        config::fail("provider.dependencies." + slot,
                     "\"" + ref.spec + "\" needs a \"group\" section");
      }
    }
  }
  impl_->start_provider(provider, "provider");
  return impl_->describe(impl_->running.back());
}

void Process::remove_provider(std::string_view name) {
  std::lock_guard lock(impl_->mutex);
  auto& running = impl_->running;
  auto it =
      std::find_if(running.begin(), running.end(), [&](auto& p) { return p.config.name == name; });
  if (it == running.end()) {
    config::fail("provider", "no provider named \"" + std::string(name) + "\"");
  }
  for (const auto& p : running) {
    for (const auto& [slot, deps] : p.dependencies) {
      for (const auto& dep : deps) {
        if (dep.local == it->component.get()) {
          config::fail("provider", "\"" + std::string(name) + "\" is a dependency of \"" +
                                       p.config.name + "\" (" + slot + "); remove that first");
        }
      }
    }
  }
  try {
    it->component->stop();
  } catch (const std::exception& e) {
    logger()->error("provider \"{}\" failed to stop: {}", name, e.what());
  }
  running.erase(it);
  logger()->info("removed provider \"{}\"", name);
}

void Process::request_stop() {
  if (!impl_->stop_asked.exchange(true)) impl_->stop_requested.set_value();
}

void Process::wait() { impl_->stop_requested.wait(); }

void Process::stop() {
  if (impl_->stopped.exchange(true)) return;
  impl_->stop_asked.store(true);
  for (auto name :
       {kQueryRpc, kListProvidersRpc, kAddProviderRpc, kRemoveProviderRpc, kShutdownRpc}) {
    impl_->engine->deregister(name, 0);
  }
  impl_->stop_providers();
  if (impl_->group) {
    try {
      impl_->group->leave();
    } catch (const std::exception& e) {
      logger()->error("leaving the group failed: {}", e.what());
    }
  }
  if (impl_->monitoring) impl_->monitoring->stop();
  impl_->engine->finalize();
}

}  // namespace dango::compose
