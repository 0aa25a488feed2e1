// The `file` target: regions are extents of pre-allocated space, in one large file or in a
// directory of fixed-size files (DataFiles). Its other pieces, each in a file of its own:
// ExtentAllocator (space: best fit, coalescing, erased space reused), Journal (the layout,
// surviving restarts), IoEngine (io_uring, or pread/pwrite). Reads move through the provider's
// staging buffers; writes too, except that with "mapped_writes" a pull into pages already in the
// page cache goes straight into the file's shared mapping (direct_write).
//
// Durability: persist() fdatasyncs the range (in each file it spans; mapped writes included: they
// dirty the same page cache), then the journal up to the region's create record.
// An erased extent is reused only once its erase record is durable, so that a crash can never
// bring back a region whose space another region has already overwritten, and once no read,
// write or persist that found the region before the erase is still using it (a write racing an
// erase either lands in the old extent, whose bytes nobody reads again, or fails with
// kUnknownRegion).
//
// Config: {"path": required, "layout": "file" (one file at path, its journal
// `<path>.journal`) | "directory" (a folder at path holding data.00000, ... and the journal),
// "capacity": bytes of a new target (default 1 GiB; an existing target keeps its own),
// "file_size": directory only, bytes per data file of a new target (default 256 MiB; the last
// file holds the rest of the capacity), "zero_fill": false (true: a new target's data files are
// written with zeros at creation, once, so that no later write lands in space the file system
// has reserved but not written: the first fdatasync of such space also waits for a journal
// commit that converts its extents, measured on ext4 16 MiB pwrite+fdatasync at 72-216 ms into
// fallocated space against 8-12 ms over written blocks; off by default because creation then
// writes the whole capacity), "direct_io": false, "io_engine": "auto" | "io_uring" |
// "psync", "queue_depth": 64, "mapped_writes": false (true: a pull into pages already cached
// goes straight into the file's shared mapping, saving the staging copy; off by default because
// on ext4 the write fault each clean mapped page takes costs more than that copy: measured 16 MiB
// write+persist over sm about half as fast; never with direct_io, nor when a file has holes)}.

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <shared_mutex>

#include "dango/common/config.hpp"
#include "services/blob/aligned_buffer.hpp"
#include "services/blob/backend.hpp"
#include "services/blob/data_files.hpp"
#include "services/blob/extent_allocator.hpp"
#include "services/blob/io_engine.hpp"
#include "services/blob/journal.hpp"

namespace dango::blob {
namespace {

constexpr uint64_t kBlock = DataFiles::kBlock;  // allocation unit, header size, O_DIRECT alignment

struct FileOptions {
  std::string path;
  DataLayout layout = DataLayout::kFile;
  uint64_t capacity = 1ull << 30;
  uint64_t file_size = 256ull << 20;
  bool zero_fill = false;
  bool direct_io = false;
  IoEngineKind io_engine = IoEngineKind::kAuto;
  unsigned queue_depth = 64;
  bool mapped_writes = false;
};

constexpr std::pair<std::string_view, IoEngineKind> kEngines[] = {
    {"auto", IoEngineKind::kAuto},
    {"io_uring", IoEngineKind::kIoUring},
    {"psync", IoEngineKind::kPsync}};
constexpr std::pair<std::string_view, DataLayout> kLayouts[] = {
    {"file", DataLayout::kFile}, {"directory", DataLayout::kDirectory}};

FileOptions read_options(const nlohmann::json& json, const std::string& path) {
  FileOptions options;
  config::ConfigReader reader{json, path};
  reader.require("path", options.path);
  reader.get_enum("layout", options.layout, kLayouts);
  reader.get("capacity", options.capacity);
  const bool has_file_size = reader.has("file_size");
  reader.get("file_size", options.file_size);
  reader.get("zero_fill", options.zero_fill);
  reader.get("direct_io", options.direct_io);
  reader.get_enum("io_engine", options.io_engine, kEngines);
  reader.get("queue_depth", options.queue_depth);
  reader.get("mapped_writes", options.mapped_writes);
  reader.finish();
  if (options.path.empty()) config::fail(config::join(path, "path"), "must not be empty");
  if (options.capacity < kBlock || options.capacity % kBlock != 0) {
    config::fail(config::join(path, "capacity"), "must be a positive multiple of 4096");
  }
  if (has_file_size && options.layout != DataLayout::kDirectory) {
    config::fail(config::join(path, "file_size"), "only for \"layout\": \"directory\"");
  }
  if (options.file_size < kBlock || options.file_size % kBlock != 0) {
    config::fail(config::join(path, "file_size"), "must be a positive multiple of 4096");
  }
  if (options.layout == DataLayout::kDirectory &&
      options.capacity / options.file_size >= (uint64_t{1} << 20)) {
    config::fail(config::join(path, "file_size"), "makes over a million files; use larger ones");
  }
  if (options.queue_depth == 0 || options.queue_depth > 4096) {
    config::fail(config::join(path, "queue_depth"), "must be between 1 and 4096");
  }
  return options;
}

class FileBackend final : public Backend {
 public:
  FileBackend(const nlohmann::json& json, const BackendContext& context)
      : options_(read_options(json, context.config_path)), name_(context.target_name) {
    const DataFilesOptions files{.path = options_.path,
                                 .layout = options_.layout,
                                 .capacity = options_.capacity,
                                 .file_size = options_.file_size,
                                 .direct_io = options_.direct_io,
                                 .zero_fill = options_.zero_fill};
    if (DataFiles::exists(files)) {
      open_existing(files);
    } else {
      create_new(files);
    }
    options_.capacity = files_->capacity();
    if (options_.layout == DataLayout::kDirectory) options_.file_size = files_->file_size();
    io_ = make_io_engine(options_.io_engine, options_.queue_depth);
    if (options_.mapped_writes && !options_.direct_io) files_->map_files();
  }

  ~FileBackend() override {
    io_.reset();
    std::string journal_path;
    if (journal_) journal_path = journal_->path();
    journal_.reset();
    if (destroy_when_closed_) {
      ::unlink(journal_path.c_str());
      files_->remove();
    }
  }

  static nlohmann::json example_config(const std::string& scratch_dir) {
    return {{"path", scratch_dir + "/blob-target"}, {"capacity", 64ull << 20}};
  }
  // Small data files, so that regions of a few MiB span several.
  static std::map<std::string, nlohmann::json> example_variants(const std::string& scratch_dir) {
    return {{"directory",
             {{"path", scratch_dir + "/blob-target"},
              {"layout", "directory"},
              {"capacity", 64ull << 20},
              {"file_size", 1ull << 20}}}};
  }

  std::string_view type() const override { return "file"; }
  nlohmann::json config() const override {
    nlohmann::json config = {
        {"path", options_.path},
        {"layout", options_.layout == DataLayout::kFile ? "file" : "directory"},
        {"capacity", options_.capacity},
        {"zero_fill", options_.zero_fill},
        {"direct_io", options_.direct_io},
        {"io_engine", io_ ? std::string(io_->name()) : "auto"},
        {"queue_depth", options_.queue_depth},
        {"mapped_writes", options_.mapped_writes}};
    if (options_.layout == DataLayout::kDirectory) config["file_size"] = options_.file_size;
    return config;
  }
  Usage usage() const override {
    std::shared_lock lock(mutex_);
    return {.regions = regions_.size(),
            .capacity = options_.capacity,
            .used_bytes = used_bytes_,
            // Space waiting for its erase record to be durable counts as free: create() makes it
            // so when it needs the space (unless an operation still uses the erased region).
            .free_bytes = allocator_->free_bytes() + pending_free_bytes_,
            .free_extents = allocator_->free_extents()};
  }

  Status create(uint64_t size, RegionId& id) override {
    std::unique_lock lock(mutex_);
    release_durable_frees();
    std::optional<uint64_t> offset = allocator_->allocate(size);
    if (!offset && !pending_free_.empty()) {
      // Space waits only for erase records to be durable: make them so, then retry. (A blocking
      // fdatasync: the layout lock is held, so this ULT must not yield.)
      if (const int error = journal_->sync_through(pending_free_.back().sequence); error != 0) {
        return io_status("cannot sync the journal", error);
      }
      release_durable_frees();
      offset = allocator_->allocate(size);
    }
    if (!offset) {
      return Status::Fail(ErrorCode::kNoSpace,
                          "target \"" + name_ + "\": no free extent of " + std::to_string(size) +
                              " bytes (" + std::to_string(allocator_->free_bytes()) +
                              " bytes free, largest extent " +
                              std::to_string(allocator_->largest_free()) + ")");
    }
    const uint64_t number = next_id_;
    int error = 0;
    const uint64_t sequence = journal_->append(
        {.kind = JournalRecord::Kind::kCreate, .id = number, .offset = *offset, .size = size},
        error);
    if (sequence == 0) {
      allocator_->release(*offset, size);
      return io_status("cannot append to the journal", error);
    }
    ++next_id_;
    regions_.emplace(number, Region{.offset = *offset, .size = size, .sequence = sequence});
    used_bytes_ += allocator_->round_up(size);
    id = RegionId::from_number(number);
    return Status::Ok();
  }

  Status write(RegionId id, uint64_t offset, std::span<const std::byte> data) override {
    Region region;
    if (Status status = locate(id, offset, data.size(), region); !status.ok()) return status;
    const uint64_t at = region.offset + offset;
    if (needs_bounce(data.data(), at, data.size())) return bounced_write(data, at);
    return io_result("write", files_->write(*io_, data, at));
  }

  Status read(RegionId id, uint64_t offset, std::span<std::byte> out) override {
    Region region;
    if (Status status = locate(id, offset, out.size(), region); !status.ok()) return status;
    const uint64_t at = region.offset + offset;
    if (needs_bounce(out.data(), at, out.size())) return bounced_read(out, at);
    return io_result("read", files_->read(*io_, out, at));
  }

  Status persist(RegionId id, uint64_t offset, uint64_t size) override {
    Region region;
    if (Status status = locate(id, offset, size, region); !status.ok()) return status;
    if (size > 0) {
      if (Status status = io_result("sync", files_->sync(*io_, region.offset + offset, size));
          !status.ok()) {
        return status;
      }
    }
    if (const int error = journal_->sync_through(region.sequence, journal_sync()); error != 0) {
      return io_status("cannot sync the journal", error);
    }
    return Status::Ok();
  }

  // Pulls go straight into the mapped file when the range's pages are all in the page cache: no
  // staging copy, and no page is read from the device first (a write fault on a page the cache
  // lacks would read it, where write() of whole pages does not).
  bool direct_write(RegionId id, uint64_t offset, uint64_t size, DirectAccess& out) override {
    Region region;
    if (size == 0 || !locate(id, offset, size, region).ok()) return false;
    std::byte* bytes = files_->mapped(region.offset + offset, size);
    if (bytes == nullptr) return false;  // not mapped, or spanning data files
    std::byte* first = bytes - reinterpret_cast<uintptr_t>(bytes) % kBlock;  // mappings are
    const uint64_t pages = (bytes + size - first + kBlock - 1) / kBlock;     // page-aligned
    std::vector<unsigned char> resident(pages);
    if (::mincore(first, pages * kBlock, resident.data()) != 0) return false;
    for (unsigned char page : resident) {
      if ((page & 1) == 0) return false;
    }
    out.bytes = {bytes, size};
    out.keep_alive = region.users;  // the extent stays the region's until the pull is done
    return true;
  }

  void start_persist(RegionId id, uint64_t offset, uint64_t size) override {
    Region region;
    if (size == 0 || !locate(id, offset, size, region).ok()) return;
    files_->start_writeback(*io_, region.offset + offset, size);  // a hint: persist() reports
                                                                  // failures
  }

  Status get_size(RegionId id, uint64_t& size) override {
    Region region;
    if (Status status = locate(id, 0, 0, region); !status.ok()) return status;
    size = region.size;
    return Status::Ok();
  }

  Status erase(RegionId id) override {
    std::unique_lock lock(mutex_);
    auto it = regions_.find(id.number());
    if (it == regions_.end()) return unknown_region(id);
    int error = 0;
    const uint64_t sequence =
        journal_->append({.kind = JournalRecord::Kind::kErase, .id = id.number()}, error);
    if (sequence == 0) return io_status("cannot append to the journal", error);
    pending_free_.push_back({.offset = it->second.offset,
                             .size = it->second.size,
                             .sequence = sequence,
                             .users = it->second.users});
    pending_free_bytes_ += allocator_->round_up(it->second.size);
    used_bytes_ -= allocator_->round_up(it->second.size);
    regions_.erase(it);
    return compact_if_worthwhile();
  }

  Status list(std::vector<RegionId>& ids) override {
    std::shared_lock lock(mutex_);
    ids.clear();
    for (const auto& [number, region] : regions_) ids.push_back(RegionId::from_number(number));
    return Status::Ok();
  }

 private:
  struct Region {
    uint64_t offset = 0;    // extent start in the data file
    uint64_t size = 0;      // bytes the region holds
    uint64_t sequence = 0;  // journal sequence of its create record (0: from an earlier run)
    // Held by every copy that locate() hands to an operation in progress (and by a direct
    // write's access): the extent of an erased region is not reused while one is held, so a
    // write racing the erase lands in space nobody else has.
    std::shared_ptr<const char> users = std::make_shared<const char>(0);
  };
  struct PendingFree {
    uint64_t offset, size, sequence;  // the extent, and the erase record that frees it
    std::weak_ptr<const char> users;  // operations still using the extent
  };

  // ---- opening --------------------------------------------------------------------------------

  void create_new(const DataFilesOptions& files) {
    std::random_device random;
    const uint64_t uuid = (static_cast<uint64_t>(random()) << 32) ^ random();
    const bool new_folder = DataFiles::prepare(files, name_);
    // The journal before the data files: a target whose first data file exists always has one
    // (a crash in between leaves a lone journal, replaced on the next creation).
    const std::string journal_path = DataFiles::journal_path(files);
    try {
      journal_ = std::make_unique<Journal>(journal_path, uuid, true, nullptr);
      files_ = DataFiles::create(files, uuid, name_);
    } catch (...) {
      journal_.reset();
      std::error_code ignored;
      std::filesystem::remove(journal_path, ignored);
      if (new_folder) DataFiles::remove_new_folder(files);
      throw;
    }
    allocator_ = std::make_unique<ExtentAllocator>(kBlock, files_->capacity(), kBlock);
  }

  void open_existing(const DataFilesOptions& files) {
    files_ = DataFiles::open(files, name_);
    uint64_t highest = 0;
    journal_ = std::make_unique<Journal>(
        DataFiles::journal_path(files), files_->uuid(), false, [&](const JournalRecord& record) {
          highest = std::max(highest, record.id);
          if (record.kind == JournalRecord::Kind::kCreate) {
            regions_[record.id] = Region{.offset = record.offset, .size = record.size};
          } else {
            regions_.erase(record.id);
          }
        });
    next_id_ = highest + 1;
    rebuild_allocator();
  }

  // The allocator from the live regions: any extent outside the area, or overlapping another,
  // means the layout is damaged.
  void rebuild_allocator() {
    allocator_ = std::make_unique<ExtentAllocator>(kBlock, files_->capacity(), kBlock);
    for (const auto& [number, region] : regions_) {
      if (region.size == 0 || !allocator_->reserve(region.offset, region.size)) {
        throw Error(ErrorCode::kCorruption, "target \"" + name_ + "\": region " +
                                                RegionId::from_number(number).to_string() +
                                                " overlaps another one or lies outside " +
                                                options_.path);
      }
      used_bytes_ += allocator_->round_up(region.size);
    }
  }

  // ---- helpers --------------------------------------------------------------------------------

  // Journal syncs go through the I/O engine, so that with io_uring they do not block the
  // execution stream (a persist overlapping a transfer keeps the network side running).
  Journal::Datasync journal_sync() {
    return [this](int fd) { return io_->sync(fd, 0, 0); };
  }

  Status locate(RegionId id, uint64_t offset, uint64_t size, Region& out) const {
    std::shared_lock lock(mutex_);
    auto it = regions_.find(id.number());
    if (it == regions_.end()) return unknown_region(id);
    out = it->second;
    return check_range(id, out.size, offset, size);
  }

  void release_durable_frees() {
    const uint64_t synced = journal_->synced_sequence();
    size_t kept = 0;
    for (const PendingFree& pending : pending_free_) {
      if (pending.sequence <= synced && pending.users.expired()) {
        allocator_->release(pending.offset, pending.size);
        pending_free_bytes_ -= allocator_->round_up(pending.size);
      } else {
        pending_free_[kept++] = pending;
      }
    }
    pending_free_.resize(kept);
  }

  // Rewrites the journal when most of its records describe erased regions. Called with the lock
  // held exclusively, so no record is appended meanwhile.
  Status compact_if_worthwhile() {
    const uint64_t records = journal_->records_in_file();
    if (records < 4096 || records < 4 * regions_.size()) return Status::Ok();
    std::vector<JournalRecord> live;
    live.reserve(regions_.size() + 1);
    for (const auto& [number, region] : regions_) {
      live.push_back({.kind = JournalRecord::Kind::kCreate,
                      .id = number,
                      .offset = region.offset,
                      .size = region.size});
    }
    // Keeps the highest id ever handed out known after a restart, so none is handed out twice.
    if (!regions_.contains(next_id_ - 1)) {
      live.push_back({.kind = JournalRecord::Kind::kErase, .id = next_id_ - 1});
    }
    if (const int error = journal_->rewrite(live); error != 0) {
      return io_status("cannot compact the journal", error);
    }
    for (auto& [number, region] : regions_) region.sequence = 0;
    release_durable_frees();
    return Status::Ok();
  }

  bool needs_bounce(const void* memory, uint64_t at, uint64_t size) const {
    return options_.direct_io && (reinterpret_cast<uintptr_t>(memory) % kBlock != 0 ||
                                  at % kBlock != 0 || size % kBlock != 0);
  }

  // O_DIRECT with unaligned memory, offset or length: through an aligned buffer covering whole
  // blocks (read-modify-write of the partial first and last blocks, which the region's extent
  // owns).
  Status bounced_write(std::span<const std::byte> data, uint64_t at) {
    const uint64_t start = at / kBlock * kBlock;
    const uint64_t end = (at + data.size() + kBlock - 1) / kBlock * kBlock;
    AlignedBuffer buffer(end - start, kBlock);
    std::span<std::byte> blocks = buffer.span();
    if (at != start || (at + data.size()) % kBlock != 0) {
      if (Status status = io_result("read", files_->read(*io_, blocks, start)); !status.ok())
        return status;
    }
    std::memcpy(blocks.data() + (at - start), data.data(), data.size());
    return io_result("write", files_->write(*io_, blocks, start));
  }

  Status bounced_read(std::span<std::byte> out, uint64_t at) {
    const uint64_t start = at / kBlock * kBlock;
    const uint64_t end = (at + out.size() + kBlock - 1) / kBlock * kBlock;
    AlignedBuffer buffer(end - start, kBlock);
    if (Status status = io_result("read", files_->read(*io_, buffer.span(), start)); !status.ok())
      return status;
    std::memcpy(out.data(), buffer.span().data() + (at - start), out.size());
    return Status::Ok();
  }

  Status io_result(const char* what, int error) const {
    if (error == 0) return Status::Ok();
    return io_status(std::string("cannot ") + what + " " + options_.path, error);
  }
  Status io_status(const std::string& what, int error) const {
    return Status::Fail(ErrorCode::kIoError,
                        "target \"" + name_ + "\": " + what + ": " + std::strerror(error));
  }

  FileOptions options_;
  std::string name_;
  std::unique_ptr<DataFiles> files_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<IoEngine> io_;

  // Guards the layout below; held only for table and allocator updates and journal appends,
  // never across data I/O.
  mutable std::shared_mutex mutex_;
  std::map<uint64_t, Region> regions_;
  std::unique_ptr<ExtentAllocator> allocator_;
  std::vector<PendingFree> pending_free_;  // in erase order, so sequences ascend
  uint64_t pending_free_bytes_ = 0;
  uint64_t next_id_ = 1;
  uint64_t used_bytes_ = 0;
};

}  // namespace

DANGO_REGISTER_BLOB_BACKEND(file, FileBackend);

}  // namespace dango::blob
