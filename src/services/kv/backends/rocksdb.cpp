// "rocksdb": a persistent, ordered database in RocksDB (Debian's librocksdb). Config:
//   path               directory of the store (required)
//   create_if_missing  create the store when absent (default true)
//   error_if_exists    refuse an existing store (default false; forced by Admin::create)
//   sync               fsync the log on every write: survives a machine crash, not only a
//                      process crash (default false, RocksDB's default)
//   cache_size         block cache in bytes (default 8 MiB)
//   compression        "none", "snappy", "lz4", "zstd", "zlib" (default "snappy")
//   write_buffer_size  memtable size in bytes before a flush (default 64 MiB)
//   max_open_files     file descriptors RocksDB may keep (default -1: unlimited)
//   paranoid_checks    verify files aggressively, failing early on corruption (default true)
// Writes go through one mutex so that every put mode is atomic per key (RocksDB serialises
// writes internally anyway); reads take no lock. count() walks every key.

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <utility>

#include "dango/common/config.hpp"
#include "dango/common/log.hpp"
#include "services/kv/backend.hpp"
#include "services/kv/backends/batch_writes.hpp"
#include "services/kv/backends/ordered_iteration.hpp"

namespace dango::kv {
namespace {

Status status_of(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  ErrorCode code = ErrorCode::Internal;
  if (s.IsIOError() || s.IsNoSpace()) code = ErrorCode::IoError;
  if (s.IsCorruption()) code = ErrorCode::Corruption;
  if (s.IsInvalidArgument()) code = ErrorCode::InvalidArgument;
  return Status::Fail(code, "rocksdb " + std::string(what) + ": " + s.ToString());
}

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }

using RocksDbApi = StoreApi<rocksdb::DB, rocksdb::WriteBatch, rocksdb::Slice, rocksdb::ReadOptions,
                            rocksdb::WriteOptions, &status_of>;

constexpr std::pair<std::string_view, rocksdb::CompressionType> kCompressions[] = {
    {"none", rocksdb::kNoCompression},
    {"snappy", rocksdb::kSnappyCompression},
    {"lz4", rocksdb::kLZ4Compression},
    {"zstd", rocksdb::kZSTD},
    {"zlib", rocksdb::kZlibCompression}};

class RocksDbBackend final : public Backend {
 public:
  static constexpr bool kPersistent = true;
  static constexpr bool kOrdered = true;

  RocksDbBackend(const nlohmann::json& json, const BackendContext& context) {
    read_config(json, context.config_path);
    if (context.must_create) error_if_exists_ = true;
    rocksdb::Options options;
    options.create_if_missing = create_if_missing_;
    options.error_if_exists = error_if_exists_;
    options.paranoid_checks = paranoid_checks_;
    options.write_buffer_size = write_buffer_size_;
    options.max_open_files = max_open_files_;
    options.compression = compression_;
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = rocksdb::NewLRUCache(cache_size_);
    options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    write_options_.sync = sync_;
    rocksdb::DB* db = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(options, path_, &db);
    if (!s.ok()) {
      const bool exists = error_if_exists_ && s.IsInvalidArgument() &&
                          s.ToString().find("exists") != std::string::npos;
      Status st = status_of(s, "cannot open " + path_);
      throw Error(exists ? ErrorCode::DatabaseExists : st.code,
                  "database \"" + context.name + "\": " + st.message);
    }
    db_.reset(db);
    options_ = options;
  }

  ~RocksDbBackend() override {
    if (db_) db_->Close();
    db_.reset();
    if (destroy_when_closed_) {
      rocksdb::DestroyDB(path_, options_);
      std::error_code ignored;
      std::filesystem::remove_all(path_, ignored);
    }
  }

  std::string_view type() const override { return "rocksdb"; }

  nlohmann::json config() const override {
    std::string compression;
    for (const auto& [name, value] : kCompressions) {
      if (value == compression_) compression = name;
    }
    return {{"path", path_},
            {"create_if_missing", create_if_missing_},
            {"error_if_exists", error_if_exists_},
            {"sync", sync_},
            {"cache_size", cache_size_},
            {"compression", compression},
            {"write_buffer_size", write_buffer_size_},
            {"max_open_files", max_open_files_},
            {"paranoid_checks", paranoid_checks_}};
  }

  Status put(std::span<const std::string_view> keys, std::span<const std::string_view> values,
             PutMode mode, std::vector<bool>& applied) override {
    std::lock_guard lock(write_mutex_);
    return batch_writes::put<RocksDbApi>(*db_, write_options_, keys, values, mode, applied);
  }

  Status get(std::span<const std::string_view> keys, bool consume, ValueVisitor visit) override {
    if (consume) {
      std::lock_guard lock(write_mutex_);
      return batch_writes::consume<RocksDbApi>(*db_, write_options_, keys, visit);
    }
    rocksdb::PinnableSlice value;
    for (size_t i = 0; i < keys.size(); ++i) {
      value.Reset();
      rocksdb::Status s =
          db_->Get(rocksdb::ReadOptions(), db_->DefaultColumnFamily(), slice(keys[i]), &value);
      if (s.IsNotFound()) continue;
      if (!s.ok()) return status_of(s, "get");
      visit(i, view_of(value));
    }
    return Status::Ok();
  }

  Status length(std::span<const std::string_view> keys, std::span<size_t> sizes) override {
    rocksdb::PinnableSlice value;
    for (size_t i = 0; i < keys.size(); ++i) {
      value.Reset();
      rocksdb::Status s =
          db_->Get(rocksdb::ReadOptions(), db_->DefaultColumnFamily(), slice(keys[i]), &value);
      if (s.IsNotFound()) {
        sizes[i] = kNotFound;
        continue;
      }
      if (!s.ok()) return status_of(s, "get");
      sizes[i] = value.size();
    }
    return Status::Ok();
  }

  Status erase(std::span<const std::string_view> keys) override {
    std::lock_guard lock(write_mutex_);
    return batch_writes::erase<RocksDbApi>(*db_, write_options_, keys);
  }

  Status list(const ListQuery& query, EntryVisitor visit) override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    visit_range(*it, query, visit);
    return status_of(it->status(), "iterate");
  }

  Status count(uint64_t& count) override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    count = count_entries(*it);
    return status_of(it->status(), "iterate");
  }

 private:
  void read_config(const nlohmann::json& json, const std::string& path) {
    config::ConfigReader reader(json, path);
    reader.require("path", path_);
    reader.get("create_if_missing", create_if_missing_);
    reader.get("error_if_exists", error_if_exists_);
    reader.get("sync", sync_);
    reader.get("cache_size", cache_size_);
    reader.get_enum("compression", compression_, kCompressions);
    reader.get("write_buffer_size", write_buffer_size_);
    reader.get("max_open_files", max_open_files_);
    reader.get("paranoid_checks", paranoid_checks_);
    reader.finish();
    if (path_.empty()) config::fail(config::join(path, "path"), "must not be empty");
    const auto supported = rocksdb::GetSupportedCompressions();
    if (compression_ != rocksdb::kNoCompression &&
        std::find(supported.begin(), supported.end(), compression_) == supported.end()) {
      config::fail(config::join(path, "compression"), "not supported by this RocksDB build");
    }
  }

  std::string path_;
  bool create_if_missing_ = true;
  bool error_if_exists_ = false;
  bool sync_ = false;
  size_t cache_size_ = 8 << 20;
  rocksdb::CompressionType compression_ = rocksdb::kSnappyCompression;
  size_t write_buffer_size_ = 64 << 20;
  int max_open_files_ = -1;
  bool paranoid_checks_ = true;

  rocksdb::Options options_;
  rocksdb::WriteOptions write_options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::mutex write_mutex_;
};

}  // namespace

DANGO_REGISTER_KV_BACKEND(rocksdb, RocksDbBackend);

}  // namespace dango::kv
