#pragma once
// Vocabulary of the key/value service: per-call options, listing queries, and what the backend
// registry offers. Keys and values are arbitrary bytes (std::string / std::string_view hold them).

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace dango::kv {

// The size reported for a key that is absent (length_multi, get_packed).
inline constexpr size_t kNotFound = std::numeric_limits<size_t>::max();

// How a put treats an existing value. Applied atomically per key by the provider.
enum class PutMode : uint8_t {
  Overwrite = 0,  // write the value whether or not the key exists
  NewOnly,        // write only if the key is absent (else KeyExists / not applied)
  ExistOnly,      // write only if the key exists (else KeyNotFound / not applied)
  Append,         // append to the existing value (or write it when absent)
};

struct PutOptions {
  PutMode mode = PutMode::Overwrite;
};

struct GetOptions {
  // Get and erase in one step, atomically per key (default false).
  bool consume = false;
};

// Which keys a listing returns, in key order (bytewise).
struct ListOptions {
  // Start here (default "": the first key). Pass the last key of the previous page with
  // `inclusive = false` to get the next page: nothing is skipped or repeated.
  std::string start{};
  // Whether `start` itself is returned when present (default true).
  bool inclusive = true;
  // Only keys beginning with this (default "": all keys).
  std::string prefix{};
  // At most this many entries (default 1024). A page may hold fewer (the provider caps its
  // reply size); only an empty page means the end.
  size_t max = 1024;
};

struct KeyValue {
  std::string key;
  std::string value;
  bool operator==(const KeyValue&) const = default;
};

// A database type a provider can make ("map", "rocksdb", ...), from the backend registry.
struct BackendDescription {
  std::string name;
  bool persistent = false;  // keeps its data in files (needs "path" in its config)
  bool ordered = false;     // lists keys in order (list_keys / list_keyvals work)
};

// The backends linked into this process, ordered by name. Tests and benchmarks iterate over it.
std::vector<BackendDescription> available_backends();

// A database as a provider reports it (Admin::list_databases).
struct DatabaseInfo {
  std::string name;
  std::string type;
  bool operator==(const DatabaseInfo&) const = default;
};

}  // namespace dango::kv
