#pragma once
// The interface every blob target implements, and the registry that makes one by type name.
// A target type is one file in backends/ plus one line:
//
//   DANGO_REGISTER_BLOB_BACKEND(file, FileBackend);
//
// where FileBackend derives from Backend, is constructible as
// FileBackend(const nlohmann::json& config, const BackendContext& context), and has
// `static nlohmann::json example_config(const std::string& scratch_dir)`; it may also have
// `static std::map<std::string, nlohmann::json> example_variants(const std::string& scratch_dir)`,
// further configurations worth testing and benchmarking on their own, by name (file:
// "directory"), which tests and benchmarks know as "<type>.<variant>". Backends report
// failures as Status values (the provider turns them into replies once); they throw only from
// their constructor (bad config: ConfigError naming the key; storage that cannot be opened:
// blob::Error).
//
// Threading: every method may be called concurrently from several ULTs and execution streams.
// A method may yield its ULT while it waits for the disk, never while it holds a lock.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dango/services/blob/errors.hpp"
#include "dango/services/blob/options.hpp"
#include "dango/services/blob/region_id.hpp"

namespace dango::blob {

// The outcome of a backend call: cheap when ok.
struct Status {
  ErrorCode code = ErrorCode::kOk;
  std::string message{};

  bool ok() const { return code == ErrorCode::kOk; }
  static Status Ok() { return {}; }
  static Status Fail(ErrorCode code, std::string message) { return {code, std::move(message)}; }
};

// A region's bytes as the target keeps them in this process's memory, so that transfers go
// straight to them; `keep_alive` holds them while the caller uses the span (an erase meanwhile
// frees them only afterwards).
struct DirectAccess {
  std::span<std::byte> bytes{};
  std::shared_ptr<const void> keep_alive{};
};

// Where a backend is being made.
struct BackendContext {
  std::string target_name{};  // for messages
  std::string config_path{};  // JSON path of its config, for ConfigError messages
};

// Usage figures for TargetInfo.
struct Usage {
  uint64_t regions = 0;
  uint64_t capacity = 0;
  uint64_t used_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t free_extents = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // The registered type name ("file").
  virtual std::string_view type() const = 0;
  // The effective configuration (every option, defaults filled in).
  virtual nlohmann::json config() const = 0;
  virtual Usage usage() const = 0;

  // A new region of `size` (> 0) bytes.
  virtual Status create(uint64_t size, RegionId& id) = 0;
  // Copies `data` into the region at `offset` (range already checked by check_range or not:
  // backends check it themselves).
  virtual Status write(RegionId id, uint64_t offset, std::span<const std::byte> data) = 0;
  virtual Status read(RegionId id, uint64_t offset, std::span<std::byte> out) = 0;
  // Makes the range and the region's existence durable.
  virtual Status persist(RegionId id, uint64_t offset, uint64_t size) = 0;
  // Starts moving the range to stable storage without waiting for it (a hint that persist() is
  // likely to follow, so that the device works while the rest of a transfer arrives). A no-op
  // by default, and for ranges it cannot find. Cost: one system call, not the device's write.
  virtual void start_persist(RegionId id, uint64_t offset, uint64_t size) {
    (void)id, (void)offset, (void)size;
  }
  virtual Status get_size(RegionId id, uint64_t& size) = 0;
  virtual Status erase(RegionId id) = 0;
  // Every live region, in id order.
  virtual Status list(std::vector<RegionId>& ids) = 0;

  // True when direct() works: the provider then moves data straight between the caller's memory
  // and the region, without staging buffers.
  virtual bool supports_direct_access() const { return false; }
  virtual Status direct(RegionId id, uint64_t offset, uint64_t size, DirectAccess& out) {
    (void)id, (void)offset, (void)size, (void)out;
    return Status::Fail(ErrorCode::kInternal,
                        std::string(type()) + " targets have no direct access");
  }

  // For targets without direct access: the region's bytes to pull a write straight into, when
  // the backend can offer them cheaply for this range (file: its mapped file, when the range's
  // pages are in memory). False: move the data through staging buffers and write(). Writes
  // into `out.bytes` are durable after persist(), as with write().
  virtual bool direct_write(RegionId id, uint64_t offset, uint64_t size, DirectAccess& out) {
    (void)id, (void)offset, (void)size, (void)out;
    return false;
  }

  // Asks the backend to delete its data (files) when it is destroyed, i.e. once the last request
  // using it has finished.
  void destroy_when_closed() { destroy_when_closed_ = true; }

 protected:
  bool destroy_when_closed_ = false;
};

// The bounds check every backend makes: [offset, offset + size) inside a region of
// `region_size` bytes, without overflow.
inline Status check_range(RegionId id, uint64_t region_size, uint64_t offset, uint64_t size) {
  if (offset > region_size || size > region_size - offset) {
    return Status::Fail(ErrorCode::kOutOfRange,
                        "region " + id.to_string() + ": range [" + std::to_string(offset) + ", " +
                            std::to_string(offset + size) + ") is past its end (" +
                            std::to_string(region_size) + " bytes)");
  }
  return Status::Ok();
}

inline Status unknown_region(RegionId id) {
  return Status::Fail(ErrorCode::kUnknownRegion, "no region " + id.to_string());
}

// ---- registry -----------------------------------------------------------------------------------

using BackendFactory =
    std::function<std::unique_ptr<Backend>(const nlohmann::json&, const BackendContext&)>;
using ExampleVariants = std::map<std::string, nlohmann::json>;
struct BackendType {
  BackendFactory make;
  nlohmann::json (*example_config)(const std::string& scratch_dir) = nullptr;
  ExampleVariants (*example_variants)(const std::string& scratch_dir) = nullptr;  // may be null
};

// Type::example_variants when the type has one, else nullptr (for the registration macro).
template <class Type>
constexpr ExampleVariants (*example_variants_of())(const std::string&) {
  if constexpr (requires(const std::string& dir) {
                  { Type::example_variants(dir) } -> std::convertible_to<ExampleVariants>;
                }) {
    return &Type::example_variants;
  } else {
    return nullptr;
  }
}

// Registers a target type at static-initialisation time; returns true. Aborts on a duplicate.
bool register_backend(std::string_view name, BackendType type);
// The type registered as `name`, or nullptr.
const BackendType* find_backend(std::string_view name);

#define DANGO_REGISTER_BLOB_BACKEND(name, Type)                                               \
  [[maybe_unused]] static const bool dango_blob_backend_##name##_registered =                 \
      ::dango::blob::register_backend(                                                        \
          #name, ::dango::blob::BackendType{                                                  \
                     [](const nlohmann::json& config, const ::dango::blob::BackendContext& c) \
                         -> std::unique_ptr<::dango::blob::Backend> {                         \
                       return std::make_unique<Type>(config, c);                              \
                     },                                                                       \
                     &Type::example_config, ::dango::blob::example_variants_of<Type>()})

}  // namespace dango::blob
