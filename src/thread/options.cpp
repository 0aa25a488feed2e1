#include "dango/thread/options.hpp"

#include <array>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>

#include "dango/common/config.hpp"

namespace dango::thread {
namespace {

constexpr std::array<std::pair<std::string_view, PoolKind>, 3> kPoolKinds = {{
    {"fifo", PoolKind::kFifo}, {"fifo_wait", PoolKind::kFifoWait}, {"prio_wait", PoolKind::kPrioWait}}};

std::string_view kind_name(PoolKind kind) {
  for (const auto& [name, value] : kPoolKinds) {
    if (value == kind) return name;
  }
  return "?";
}

}  // namespace

PoolOptions PoolOptions::from_json(const nlohmann::json& json, std::string_view path) {
  PoolOptions options;
  config::ConfigReader reader(json, std::string(path));
  reader.require("name", options.name);
  reader.get_enum("kind", options.kind, kPoolKinds);
  reader.finish();
  return options;
}

XstreamOptions XstreamOptions::from_json(const nlohmann::json& json, std::string_view path) {
  XstreamOptions options;
  config::ConfigReader reader(json, std::string(path));
  reader.require("name", options.name);
  reader.require("pools", options.pools);
  reader.finish();
  return options;
}

ThreadsOptions ThreadsOptions::from_json(const nlohmann::json& json, std::string_view path) {
  ThreadsOptions options;
  config::ConfigReader reader(json, std::string(path));
  reader.get("pools", options.pools);
  reader.get("xstreams", options.xstreams);
  reader.get("progress_pool", options.progress_pool);
  reader.get("rpc_pool", options.rpc_pool);
  reader.get("stack_size", options.stack_size);
  reader.get("idle_poll_us", options.idle_poll);
  reader.finish();
  options.validate(path);
  return options;
}

void ThreadsOptions::validate(std::string_view path) const {
  std::unordered_map<std::string, size_t> pool_index;
  const std::string pools_path = config::join(path, "pools");
  for (size_t i = 0; i < pools.size(); ++i) {
    if (pools[i].name.empty()) config::fail(config::join(config::join(pools_path, i), "name"), "empty pool name");
    if (!pool_index.emplace(pools[i].name, i).second) {
      config::fail(config::join(config::join(pools_path, i), "name"),
                   "duplicate pool name \"" + pools[i].name + "\"");
    }
  }
  auto known = [&](const std::string& name) { return pool_index.count(name) || name == kPrimary; };
  std::unordered_set<std::string> stream_names, served;
  const std::string streams_path = config::join(path, "xstreams");
  bool primary_configured = false;
  for (size_t i = 0; i < xstreams.size(); ++i) {
    const std::string stream_path = config::join(streams_path, i);
    if (xstreams[i].name.empty()) config::fail(config::join(stream_path, "name"), "empty execution stream name");
    if (!stream_names.insert(xstreams[i].name).second) {
      config::fail(config::join(stream_path, "name"),
                   "duplicate execution stream name \"" + xstreams[i].name + "\"");
    }
    primary_configured = primary_configured || xstreams[i].name == kPrimary;
    if (xstreams[i].pools.empty()) config::fail(config::join(stream_path, "pools"), "an execution stream needs at least one pool");
    for (size_t j = 0; j < xstreams[i].pools.size(); ++j) {
      const auto& name = xstreams[i].pools[j];
      if (!known(name)) {
        config::fail(config::join(config::join(stream_path, "pools"), j), "unknown pool \"" + name + "\"");
      }
      served.insert(name);
    }
  }
  if (!primary_configured) served.insert(std::string(kPrimary));
  for (size_t i = 0; i < pools.size(); ++i) {
    if (!served.count(pools[i].name) && pools[i].name != kPrimary) {
      config::fail(config::join(pools_path, i),
                   "pool \"" + pools[i].name + "\" is used by no execution stream");
    }
  }
  if (!known(progress_pool)) {
    config::fail(config::join(path, "progress_pool"), "unknown pool \"" + progress_pool + "\"");
  }
  if (!known(rpc_pool)) config::fail(config::join(path, "rpc_pool"), "unknown pool \"" + rpc_pool + "\"");
  if (stack_size < 16 * 1024) config::fail(config::join(path, "stack_size"), "must be at least 16384 bytes");
}

nlohmann::json ThreadsOptions::to_json() const {
  nlohmann::json json;
  json["pools"] = nlohmann::json::array();
  for (const auto& pool : pools) {
    json["pools"].push_back({{"name", pool.name}, {"kind", kind_name(pool.kind)}});
  }
  json["xstreams"] = nlohmann::json::array();
  for (const auto& stream : xstreams) {
    json["xstreams"].push_back({{"name", stream.name}, {"pools", stream.pools}});
  }
  json["progress_pool"] = progress_pool;
  json["rpc_pool"] = rpc_pool;
  json["stack_size"] = stack_size;
  json["idle_poll_us"] = idle_poll.count();
  return json;
}

}  // namespace dango::thread
