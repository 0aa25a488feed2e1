#pragma once
// Configuration of the blob service: what a provider hosts (targets) and how it moves data.
// Read from JSON with from_json (errors name the key path) or built with designated
// initializers:
//
//   dango::blob::ProviderOptions options{
//       .targets = {{.name = "data", .type = "file",
//                    .config = {{"path", "/tmp/store/data"}, {"capacity", 1 << 30}}}}};
//
// JSON form (one target may also be given as "target": {...}):
//   {"targets": [{"name": "data", "type": "file", "path": "/tmp/store/data"}],
//    "inline_threshold": 16384, "staging": {"buffer_size": 4194304, "buffers": 8}}

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace dango::blob {

// One target a provider hosts.
struct TargetConfig {
  // The name clients open it by; unique within the provider (default "default").
  std::string name = "default";
  // A registered target type: "memory" or "file" (see registered_target_types()). Required.
  std::string type{};
  // The type's own options (file: "path", "capacity", ...; memory: none), defaults filled in by
  // the target. In JSON they sit next to "name" and "type".
  nlohmann::json config = nlohmann::json::object();

  static TargetConfig from_json(const nlohmann::json& json, std::string_view path = "");
  nlohmann::json to_json() const;
};

// The registered staging buffers through which file targets move data to and from the network.
struct StagingOptions {
  // Bytes per buffer, and so per chunk of a pipelined transfer (default 4 MiB). Larger chunks
  // mean fewer round trips; smaller ones start the disk sooner.
  size_t buffer_size = 4 << 20;
  // Buffers in the provider's pool (default 8), shared by every transfer; a transfer waits for
  // a free one when all are in use.
  size_t buffers = 8;
  // Chunks one transfer keeps in flight at once (default 2: while one crosses the network, the
  // other goes to the disk; more keep several pulls in flight together); at most `buffers`.
  size_t pipeline_depth = 2;

  static StagingOptions from_json(const nlohmann::json& json, std::string_view path = "");
  nlohmann::json to_json() const;
};

struct ProviderOptions {
  // The targets opened (or created) when the provider starts (default none).
  std::vector<TargetConfig> targets{};
  // Writes and reads of at most this many bytes travel inside the RPC message instead of as a
  // bulk transfer (default 16 KiB): one round trip instead of two for small data.
  size_t inline_threshold = 16 << 10;
  // The staging-buffer pool used by targets that keep data outside memory (file).
  StagingOptions staging{};

  // Reads the JSON form above; throws ConfigError naming the key (unknown keys included).
  static ProviderOptions from_json(const nlohmann::json& json, std::string_view path = "");
  nlohmann::json to_json() const;
};

// What a provider reports about one of its targets.
struct TargetInfo {
  std::string name{};
  std::string type{};
  uint64_t regions = 0;       // live regions
  uint64_t capacity = 0;      // bytes the target can hold (0: bounded only by memory)
  uint64_t used_bytes = 0;    // bytes held by live regions (file: whole allocation blocks)
  uint64_t free_bytes = 0;    // bytes free for new regions (0 when unbounded)
  uint64_t free_extents = 0;  // free runs of space (file); many small ones mean fragmentation
  std::string config{};       // the effective configuration, as JSON text

  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, type, regions, capacity, used_bytes, free_bytes, free_extents, config);
  }
};

// The target types registered in this process ("file", "memory", ...), sorted.
std::vector<std::string> registered_target_types();
// The example configurations the registered types offer, sorted: one per type, named by it
// ("file", "memory"), and the further variants a type offers, named "<type>.<variant>"
// ("file.directory"). Tests and benchmarks run on each.
std::vector<std::string> example_target_names();
// A small working configuration of target type `name`, or of the example `name` (see
// example_target_names()), that keeps its data under `scratch_dir` (for tests, benchmarks and
// examples). Throws blob::Error(kUnknownTargetType).
nlohmann::json example_target_config(std::string_view name, const std::string& scratch_dir);
// The same as a target's configuration: type filled in, named "default".
TargetConfig example_target(std::string_view name, const std::string& scratch_dir);

}  // namespace dango::blob
