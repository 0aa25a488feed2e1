#pragma once
// What travels between kv::Database (client.cpp) and kv::Provider (provider.cpp): the RPC names
// and their argument and reply types. Batches are packed (one byte buffer plus sizes), so a
// million small keys are two vectors, not a million strings. When a batch is larger than the
// client's inline limit, its bytes stay in the client's memory and travel as a Bulk the provider
// pulls; values too large for a reply are pushed into a Bulk the client exposes.
//
// Every reply starts with a WireStatus: kv errors travel as values and become kv::Error at the
// client, while a failure of the RPC itself stays a dango::RemoteError.

#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dango/rpc/bulk.hpp"
#include "dango/rpc/serialize.hpp"
#include "dango/services/kv/errors.hpp"
#include "dango/services/kv/types.hpp"

namespace dango::kv::protocol {

inline constexpr const char* kOpen = "kv_open";
inline constexpr const char* kPut = "kv_put";
inline constexpr const char* kGet = "kv_get";
inline constexpr const char* kLength = "kv_length";
inline constexpr const char* kExists = "kv_exists";
inline constexpr const char* kErase = "kv_erase";
inline constexpr const char* kList = "kv_list";
inline constexpr const char* kCount = "kv_count";
inline constexpr const char* kCreateDatabase = "kv_create_database";
inline constexpr const char* kOpenDatabase = "kv_open_database";
inline constexpr const char* kCloseDatabase = "kv_close_database";
inline constexpr const char* kDestroyDatabase = "kv_destroy_database";
inline constexpr const char* kListDatabases = "kv_list_databases";

using DatabaseId = uint64_t;

struct WireStatus {
  ErrorCode code = ErrorCode::Ok;
  std::string message{};
  template <class A>
  void serialize(A& ar) {
    ar(code, message);
  }
};

// The sizes of a batch's items. On the wire they are the bytes of a std::vector<uint64_t> (a u32
// count, then the sizes), but both sides use them in place: the client sends its own span, the
// provider reads them inside the message, so a batch of a million items neither copies nor
// allocates its sizes. A view: what it points into must outlive it.
class Sizes {
 public:
  Sizes() = default;
  Sizes(std::span<const size_t> sizes)  // NOLINT: implicit, a span of sizes is what it carries
      : bytes_(std::as_bytes(sizes)) {}
  size_t size() const { return bytes_.size() / sizeof(uint64_t); }
  bool empty() const { return bytes_.empty(); }
  // The i-th size (the bytes in a message need not be aligned).
  size_t operator[](size_t i) const {
    uint64_t size;
    std::memcpy(&size, bytes_.data() + i * sizeof size, sizeof size);
    return size;
  }
  void save(rpc::OutputArchive& ar) const {
    ar.write_length(size());
    ar.write_bytes(bytes_);
  }
  void load(rpc::InputArchive& ar) {
    bytes_ = ar.read_bytes(ar.read_length(sizeof(uint64_t)) * sizeof(uint64_t));
  }

 private:
  static_assert(sizeof(size_t) == sizeof(uint64_t), "sizes travel as 8-byte integers");
  std::span<const std::byte> bytes_{};
};

// Keys of a batch: `bytes` holds them back to back, `sizes` their lengths. When `bulk` is set,
// the bytes are not in the message but in the client's memory (bulk offset 0).
struct Keys {
  Sizes sizes{};
  std::span<const std::byte> bytes{};
  std::optional<rpc::Bulk> bulk{};
  template <class A>
  void serialize(A& ar) {
    ar(sizes, bytes, bulk);
  }
};

struct OpenReply {
  WireStatus status{};
  DatabaseId id = 0;
  std::string type{};
  template <class A>
  void serialize(A& ar) {
    ar(status, id, type);
  }
};

// Keys back to back in `keys`, values in `values`; or both in `bulk`, keys first.
struct PutArgs {
  DatabaseId db = 0;
  PutMode mode = PutMode::Overwrite;
  Sizes key_sizes{};
  Sizes value_sizes{};
  std::span<const std::byte> keys{};
  std::span<const std::byte> values{};
  std::optional<rpc::Bulk> bulk{};
  template <class A>
  void serialize(A& ar) {
    ar(db, mode, key_sizes, value_sizes, keys, values, bulk);
  }
};

struct PutReply {
  WireStatus status{};
  std::vector<bool> applied{};  // empty when every key was written (Overwrite, Append)
  template <class A>
  void serialize(A& ar) {
    ar(status, applied);
  }
};

struct GetArgs {
  DatabaseId db = 0;
  bool consume = false;
  Keys keys{};
  // Client memory for the values (write-only), when they may be larger than a reply carries.
  std::optional<rpc::Bulk> out{};
  // The most bytes of values the caller can take (its buffer); more gives needs_buffer.
  uint64_t capacity = std::numeric_limits<uint64_t>::max();
  // Reply inline whatever the size: the call is in-process, no message carries it.
  bool any_size_inline = false;
  template <class A>
  void serialize(A& ar) {
    ar(db, consume, keys, out, capacity, any_size_inline);
  }
};

struct GetReply {
  WireStatus status{};
  std::vector<size_t> sizes{};  // per key, kNotFound when absent
  std::string values{};         // back to back, when they travel inline
  bool pushed = false;          // values were pushed into GetArgs::out instead
  // The values are too large to travel inline and GetArgs::out is missing or too small: nothing
  // was read (or consumed); `sizes` says how much room they need.
  bool needs_buffer = false;
  template <class A>
  void serialize(A& ar) {
    ar(status, sizes, values, pushed, needs_buffer);
  }
};

struct KeysArgs {
  DatabaseId db = 0;
  Keys keys{};
  template <class A>
  void serialize(A& ar) {
    ar(db, keys);
  }
};

struct LengthReply {
  WireStatus status{};
  std::vector<size_t> sizes{};
  template <class A>
  void serialize(A& ar) {
    ar(status, sizes);
  }
};

struct ListArgs {
  DatabaseId db = 0;
  std::string start{};
  bool inclusive = true;
  std::string prefix{};
  uint64_t max = 0;
  bool with_values = false;
  template <class A>
  void serialize(A& ar) {
    ar(db, start, inclusive, prefix, max, with_values);
  }
};

struct ListReply {
  WireStatus status{};
  std::vector<size_t> key_sizes{};
  std::string keys{};
  std::vector<size_t> value_sizes{};
  std::string values{};
  template <class A>
  void serialize(A& ar) {
    ar(status, key_sizes, keys, value_sizes, values);
  }
};

struct CountReply {
  WireStatus status{};
  uint64_t count = 0;
  template <class A>
  void serialize(A& ar) {
    ar(status, count);
  }
};

struct DatabaseSpecWire {
  std::string name{};
  std::string type{};
  std::string config{};  // JSON text
  template <class A>
  void serialize(A& ar) {
    ar(name, type, config);
  }
};

struct ListDatabasesReply {
  WireStatus status{};
  std::vector<std::string> names{};
  std::vector<std::string> types{};
  template <class A>
  void serialize(A& ar) {
    ar(status, names, types);
  }
};

}  // namespace dango::kv::protocol
