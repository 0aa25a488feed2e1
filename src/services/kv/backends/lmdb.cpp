// "lmdb": a persistent, ordered database in LMDB (Debian's liblmdb), a memory-mapped B+tree with
// one writer at a time and lock-free readers. Config:
//   path               directory of the store (required; data.mdb and lock.mdb live there)
//   create_if_missing  create the directory and store when absent (default true)
//   map_size           the largest the store may grow, in bytes (default 1 GiB; address space
//                      only, the file grows as data is written). A full map fails writes with
//                      IoError naming this key.
//   max_readers        concurrent read transactions (default 126)
//   sync               flush to disk at every commit (default true, LMDB's default; false keeps
//                      the store consistent but may lose the last commits on a machine crash)
// Every operation is one transaction; a write transaction makes each put mode atomic per key.
// Keys are limited to mdb_env_get_maxkeysize() bytes (511 in Debian's build). count() is O(1).

#include <lmdb.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <vector>

#include "dango/common/config.hpp"
#include "services/kv/backend.hpp"

namespace dango::kv {
namespace {

MDB_val val(std::string_view s) { return {s.size(), const_cast<char*>(s.data())}; }
std::string_view view(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

// A transaction aborted on scope exit unless committed.
class Txn {
 public:
  Txn(MDB_env* env, bool write) {
    rc_ = mdb_txn_begin(env, nullptr, write ? 0 : MDB_RDONLY, &txn_);
  }
  ~Txn() {
    if (txn_) mdb_txn_abort(txn_);
  }
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  int begin_status() const { return rc_; }
  MDB_txn* get() const { return txn_; }
  int commit() {
    int rc = mdb_txn_commit(txn_);
    txn_ = nullptr;
    return rc;
  }

 private:
  MDB_txn* txn_ = nullptr;
  int rc_ = 0;
};

// Read transactions kept reset between uses: renewing one skips the reader-table registration
// that beginning one costs (MDB_NOTLS lets any thread renew it).
class ReadTxnPool {
 public:
  ~ReadTxnPool() { clear(); }
  // Aborts every kept transaction; must run before the environment closes.
  void clear() {
    std::lock_guard lock(mutex_);
    for (MDB_txn* txn : free_) mdb_txn_abort(txn);
    free_.clear();
  }
  // A renewed transaction, or a new one; rc says whether it worked.
  MDB_txn* take(MDB_env* env, int& rc) {
    MDB_txn* txn = nullptr;
    {
      std::lock_guard lock(mutex_);
      if (!free_.empty()) {
        txn = free_.back();
        free_.pop_back();
      }
    }
    if (txn) {
      rc = mdb_txn_renew(txn);
      if (rc == 0) return txn;
      mdb_txn_abort(txn);
    }
    rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn);
    return rc == 0 ? txn : nullptr;
  }
  void give_back(MDB_txn* txn) {
    mdb_txn_reset(txn);
    std::lock_guard lock(mutex_);
    free_.push_back(txn);
  }

 private:
  std::mutex mutex_;
  std::vector<MDB_txn*> free_;
};

// A read transaction from the pool, returned on scope exit.
class ReadTxn {
 public:
  ReadTxn(MDB_env* env, ReadTxnPool& pool) : pool_(pool) { txn_ = pool.take(env, rc_); }
  ~ReadTxn() {
    if (txn_) pool_.give_back(txn_);
  }
  ReadTxn(const ReadTxn&) = delete;
  ReadTxn& operator=(const ReadTxn&) = delete;
  int begin_status() const { return rc_; }
  MDB_txn* get() const { return txn_; }

 private:
  ReadTxnPool& pool_;
  MDB_txn* txn_ = nullptr;
  int rc_ = 0;
};

class LmdbBackend final : public Backend {
 public:
  static constexpr bool kPersistent = true;
  static constexpr bool kOrdered = true;

  LmdbBackend(const nlohmann::json& json, const BackendContext& context) : name_(context.name) {
    read_config(json, context.config_path);
    prepare_directory(context);
    check_open(mdb_env_create(&env_), "create an environment");
    check_open(mdb_env_set_mapsize(env_, map_size_), "set map_size");
    check_open(mdb_env_set_maxreaders(env_, max_readers_), "set max_readers");
    // MDB_NOTLS: a read transaction is not tied to an OS thread (handlers are ULTs).
    unsigned flags = MDB_NOTLS | (sync_ ? 0 : MDB_NOSYNC);
    check_open(mdb_env_open(env_, path_.c_str(), flags, 0664), "open " + path_);
    Txn txn(env_, true);
    check_open(txn.begin_status(), "begin a transaction");
    check_open(mdb_dbi_open(txn.get(), nullptr, 0, &dbi_), "open the main database");
    check_open(txn.commit(), "commit");
    max_key_size_ = static_cast<size_t>(mdb_env_get_maxkeysize(env_));
  }

  ~LmdbBackend() override {
    readers_.clear();
    if (env_) mdb_env_close(env_);
    if (destroy_when_closed_) {
      std::error_code ignored;
      std::filesystem::remove_all(path_, ignored);
    }
  }

  std::string_view type() const override { return "lmdb"; }
  size_t max_key_size() const override { return max_key_size_; }

  nlohmann::json config() const override {
    return {{"path", path_},
            {"create_if_missing", create_if_missing_},
            {"map_size", map_size_},
            {"max_readers", max_readers_},
            {"sync", sync_}};
  }

  Status put(std::span<const std::string_view> keys, std::span<const std::string_view> values,
             PutMode mode, std::vector<bool>& applied) override {
    applied.assign(keys.size(), true);
    Txn txn(env_, true);
    if (int rc = txn.begin_status()) return fail(rc, "begin a write");
    std::string joined;
    for (size_t i = 0; i < keys.size(); ++i) {
      MDB_val key = val(keys[i]), value = val(values[i]);
      if (mode == PutMode::NewOnly) {
        int rc = mdb_put(txn.get(), dbi_, &key, &value, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) applied[i] = false;
        if (rc != 0 && rc != MDB_KEYEXIST) return fail(rc, "put");
        continue;
      }
      if (mode == PutMode::ExistOnly || mode == PutMode::Append) {
        MDB_val old;
        int rc = mdb_get(txn.get(), dbi_, &key, &old);
        if (rc != 0 && rc != MDB_NOTFOUND) return fail(rc, "get");
        if (mode == PutMode::ExistOnly && rc == MDB_NOTFOUND) {
          applied[i] = false;
          continue;
        }
        if (mode == PutMode::Append && rc == 0) {
          joined.assign(view(old));
          joined.append(values[i]);
          value = val(joined);
        }
      }
      if (int rc = mdb_put(txn.get(), dbi_, &key, &value, 0)) return fail(rc, "put");
    }
    if (int rc = txn.commit()) return fail(rc, "commit");
    return Status::Ok();
  }

  Status get(std::span<const std::string_view> keys, bool consume, ValueVisitor visit) override {
    if (!consume) {
      ReadTxn txn(env_, readers_);
      if (int rc = txn.begin_status()) return fail(rc, "begin a transaction");
      for (size_t i = 0; i < keys.size(); ++i) {
        MDB_val key = val(keys[i]), value;
        int rc = mdb_get(txn.get(), dbi_, &key, &value);
        if (rc == MDB_NOTFOUND) continue;
        if (rc != 0) return fail(rc, "get");
        visit(i, view(value));
      }
      return Status::Ok();
    }
    Txn txn(env_, true);
    if (int rc = txn.begin_status()) return fail(rc, "begin a write");
    for (size_t i = 0; i < keys.size(); ++i) {
      MDB_val key = val(keys[i]), value;
      int rc = mdb_get(txn.get(), dbi_, &key, &value);
      if (rc == MDB_NOTFOUND) continue;
      if (rc != 0) return fail(rc, "get");
      visit(i, view(value));  // valid until the transaction writes this key
      if (int del = mdb_del(txn.get(), dbi_, &key, nullptr)) return fail(del, "delete");
    }
    // A failed commit erases nothing; the provider then replies with the error, not the values.
    if (int rc = txn.commit()) return fail(rc, "commit");
    return Status::Ok();
  }

  Status length(std::span<const std::string_view> keys, std::span<size_t> sizes) override {
    ReadTxn txn(env_, readers_);
    if (int rc = txn.begin_status()) return fail(rc, "begin a transaction");
    for (size_t i = 0; i < keys.size(); ++i) {
      MDB_val key = val(keys[i]), value;
      int rc = mdb_get(txn.get(), dbi_, &key, &value);
      if (rc != 0 && rc != MDB_NOTFOUND) return fail(rc, "get");
      sizes[i] = rc == 0 ? value.mv_size : kNotFound;
    }
    return Status::Ok();
  }

  Status erase(std::span<const std::string_view> keys) override {
    Txn txn(env_, true);
    if (int rc = txn.begin_status()) return fail(rc, "begin a write");
    for (std::string_view k : keys) {
      MDB_val key = val(k);
      int rc = mdb_del(txn.get(), dbi_, &key, nullptr);
      if (rc != 0 && rc != MDB_NOTFOUND) return fail(rc, "delete");
    }
    if (int rc = txn.commit()) return fail(rc, "commit");
    return Status::Ok();
  }

  Status list(const ListQuery& query, EntryVisitor visit) override {
    ReadTxn txn(env_, readers_);
    if (int rc = txn.begin_status()) return fail(rc, "begin a transaction");
    MDB_cursor* raw = nullptr;
    if (int rc = mdb_cursor_open(txn.get(), dbi_, &raw)) return fail(rc, "open a cursor");
    std::unique_ptr<MDB_cursor, void (*)(MDB_cursor*)> cursor(raw, mdb_cursor_close);
    std::string_view from = std::max(query.start, query.prefix);
    MDB_val key = val(from), value;
    int rc = from.empty() ? mdb_cursor_get(raw, &key, &value, MDB_FIRST)
                          : mdb_cursor_get(raw, &key, &value, MDB_SET_RANGE);
    if (rc == 0 && !query.inclusive && view(key) == query.start) {
      rc = mdb_cursor_get(raw, &key, &value, MDB_NEXT);
    }
    for (; rc == 0; rc = mdb_cursor_get(raw, &key, &value, MDB_NEXT)) {
      if (!view(key).starts_with(query.prefix)) break;
      if (!visit(view(key), query.with_values ? view(value) : std::string_view())) break;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) return fail(rc, "iterate");
    return Status::Ok();
  }

  Status count(uint64_t& count) override {
    ReadTxn txn(env_, readers_);
    if (int rc = txn.begin_status()) return fail(rc, "begin a transaction");
    MDB_stat stat;
    if (int rc = mdb_stat(txn.get(), dbi_, &stat)) return fail(rc, "stat");
    count = stat.ms_entries;
    return Status::Ok();
  }

 private:
  Status fail(int rc, std::string_view what) const {
    std::string message = "lmdb " + std::string(what) + " in " + path_ + ": " + mdb_strerror(rc);
    if (rc == MDB_MAP_FULL) {
      return Status::Fail(ErrorCode::IoError, message + " (the store reached its map_size of " +
                                                  std::to_string(map_size_) +
                                                  " bytes; raise map_size)");
    }
    if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID) {
      return Status::Fail(ErrorCode::Corruption, message);
    }
    if (rc == MDB_BAD_VALSIZE) return Status::Fail(ErrorCode::SizeLimit, message);
    return Status::Fail(rc > 0 ? ErrorCode::IoError : ErrorCode::Internal, message);
  }

  void check_open(int rc, const std::string& what) {
    if (rc == 0) return;
    Status status = fail(rc, "cannot " + what);
    if (env_) mdb_env_close(env_);
    env_ = nullptr;
    throw Error(status.code, "database \"" + name_ + "\": " + status.message);
  }

  void prepare_directory(const BackendContext& context) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const bool has_data = fs::exists(fs::path(path_) / "data.mdb", ec);
    if (context.must_create && has_data) {
      throw Error(ErrorCode::DatabaseExists,
                  "database \"" + name_ + "\": " + path_ + " already holds an lmdb store");
    }
    if (fs::is_directory(path_, ec)) return;
    if (!create_if_missing_) {
      throw Error(ErrorCode::InvalidArgument, "database \"" + name_ + "\": " + path_ +
                                                  " does not exist (create_if_missing is false)");
    }
    fs::create_directories(path_, ec);
    if (ec) {
      throw Error(ErrorCode::IoError,
                  "database \"" + name_ + "\": cannot create " + path_ + ": " + ec.message());
    }
  }

  void read_config(const nlohmann::json& json, const std::string& path) {
    config::ConfigReader reader(json, path);
    reader.require("path", path_);
    reader.get("create_if_missing", create_if_missing_);
    reader.get("map_size", map_size_);
    reader.get("max_readers", max_readers_);
    reader.get("sync", sync_);
    reader.finish();
    if (path_.empty()) config::fail(config::join(path, "path"), "must not be empty");
    if (map_size_ == 0) config::fail(config::join(path, "map_size"), "must be > 0");
  }

  std::string name_;
  std::string path_;
  bool create_if_missing_ = true;
  size_t map_size_ = size_t{1} << 30;
  unsigned max_readers_ = 126;
  bool sync_ = true;

  MDB_env* env_ = nullptr;
  MDB_dbi dbi_ = 0;
  ReadTxnPool readers_;
  size_t max_key_size_ = 511;
};

}  // namespace

DANGO_REGISTER_KV_BACKEND(lmdb, LmdbBackend);

}  // namespace dango::kv
