#pragma once
// Configuration of the key/value service: a database (name, backend type, backend options), a
// provider (its databases and limits) and a client. Built with designated initializers in C++ or
// read from JSON, where unknown keys and wrong types are ConfigErrors naming the key path:
//
//   {"databases": [{"name": "meta", "type": "rocksdb",
//                   "config": {"path": "/tmp/meta", "sync": true}}],
//    "max_key_size": 4096, "inline_limit": 16384}
//
// A provider of a single database may say "database" instead, with the backend's options next
// to "type" (the form of the daemon configs in DESIGN.md); its name is "default" unless given:
//
//   {"database": {"type": "rocksdb", "path": "/tmp/meta", "sync": true}}

#include <chrono>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dango::kv {

// One database: its name at the provider, its backend type and that backend's options.
struct DatabaseConfig {
  std::string name{};
  // A registered backend: "map", "unordered_map", "rocksdb", "leveldb", "lmdb" (default "map").
  std::string type = "map";
  // The backend's options (see backends/<type>.cpp), e.g. {"path": "/tmp/db", "sync": true}.
  nlohmann::json config = nlohmann::json::object();
  // Where `config` was read in JSON ("databases[0].config", "database"), so that the backend's
  // errors name the key the user wrote; empty when built in C++ (the provider then names it
  // by position).
  std::string config_path{};

  // Reads {"name", "type", "config"}; throws ConfigError naming the key.
  static DatabaseConfig from_json(const nlohmann::json& json, std::string_view path);
  // Reads the single-database form {"name"?, "type"?, <backend options>...}.
  static DatabaseConfig from_flat_json(const nlohmann::json& json, std::string_view path);
  nlohmann::json to_json() const;
};

struct ProviderOptions {
  // Databases opened when the provider starts (default none; more can be added at run time).
  std::vector<DatabaseConfig> databases{};
  // Longest key accepted, in bytes (default 4 KiB). Longer keys fail with SizeLimit.
  size_t max_key_size = 4096;
  // Largest value accepted, in bytes (default 256 MiB).
  size_t max_value_size = size_t{256} << 20;
  // Replies carry values inline up to this many bytes in total; beyond, they are pushed into
  // the client's memory by a bulk transfer (default 16 KiB).
  size_t inline_limit = 16 << 10;
  // A listing page stops once its reply holds this many bytes (default 4 MiB), so that any page
  // fits one message; the caller continues from its last key.
  size_t max_list_reply = 4 << 20;

  // Reads the JSON above; throws ConfigError naming the key (`path` prefixes it).
  static ProviderOptions from_json(const nlohmann::json& json, std::string_view path = "");
  // The effective configuration, defaults filled in.
  nlohmann::json to_json() const;
};

struct ClientOptions {
  // Keys or a value buffer of more than this many bytes travel as a bulk transfer rather than
  // inside the RPC message (default 16 KiB); so does any put whose largest value exceeds it.
  size_t inline_limit = 16 << 10;
  // A put of many values no larger than inline_limit travels inside the message up to this many
  // bytes of keys and values in all (default 1 MiB): its data then reaches the provider with the
  // request, where a pull costs a round trip that the client must be scheduled to serve; beyond
  // it, the copy into the message costs more than the round trip saves.
  size_t put_inline_limit = size_t{1} << 20;
  // Deadline of every RPC issued (default: none).
  std::optional<std::chrono::milliseconds> timeout{};
};

}  // namespace dango::kv
