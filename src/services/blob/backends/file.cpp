// The `file` target: regions are extents of one pre-allocated file. Its pieces, each in a file
// of its own: ExtentAllocator (space: best fit, coalescing, erased space reused), Journal (the
// layout, surviving restarts), IoEngine (io_uring, or pread/pwrite). Reads move through the
// provider's staging buffers; writes too, except that with "mapped_writes" a pull into pages
// already in the page cache goes straight into the file's shared mapping (direct_write).
//
// Data file: a 4096-byte header {"DANGOBLB", u32 version = 1, u32 block size, u64 target uuid,
// u64 capacity} then `capacity` bytes of extents. Layout journal: `<path>.journal`.
// Durability: persist() fdatasyncs the range (mapped writes included: they dirty the same page
// cache), then the journal up to the region's create record.
// An erased extent is reused only once its erase record is durable, so that a crash can never
// bring back a region whose space another region has already overwritten, and once no read,
// write or persist that found the region before the erase is still using it (a write racing an
// erase either lands in the old extent, whose bytes nobody reads again, or fails with
// kUnknownRegion).
//
// Config: {"path": required, "capacity": bytes of a new target (default 1 GiB; an existing
// target keeps its own), "direct_io": false, "io_engine": "auto" | "io_uring" | "psync",
// "queue_depth": 64, "mapped_writes": false (true: a pull into pages already cached goes
// straight into the file's shared mapping, saving the staging copy; off by default because on
// ext4 the write fault each clean mapped page takes costs more than that copy: measured 16 MiB
// write+persist over sm about half as fast; never with direct_io, nor when the file has holes)}.

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
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
#include "services/blob/extent_allocator.hpp"
#include "services/blob/io_engine.hpp"
#include "services/blob/journal.hpp"

namespace dango::blob {
namespace {

constexpr uint64_t kBlock = 4096;  // allocation unit, header size and O_DIRECT alignment
constexpr char kMagic[8] = {'D', 'A', 'N', 'G', 'O', 'B', 'L', 'B'};
constexpr uint32_t kVersion = 1;

struct FileOptions {
  std::string path;
  uint64_t capacity = 1ull << 30;
  bool direct_io = false;
  IoEngineKind io_engine = IoEngineKind::kAuto;
  unsigned queue_depth = 64;
  bool mapped_writes = false;
};

constexpr std::pair<std::string_view, IoEngineKind> kEngines[] = {
    {"auto", IoEngineKind::kAuto},
    {"io_uring", IoEngineKind::kIoUring},
    {"psync", IoEngineKind::kPsync}};

FileOptions read_options(const nlohmann::json& json, const std::string& path) {
  FileOptions options;
  config::ConfigReader reader{json, path};
  reader.require("path", options.path);
  reader.get("capacity", options.capacity);
  reader.get("direct_io", options.direct_io);
  reader.get_enum("io_engine", options.io_engine, kEngines);
  reader.get("queue_depth", options.queue_depth);
  reader.get("mapped_writes", options.mapped_writes);
  reader.finish();
  if (options.path.empty()) config::fail(config::join(path, "path"), "must not be empty");
  if (options.capacity < kBlock || options.capacity % kBlock != 0) {
    config::fail(config::join(path, "capacity"), "must be a positive multiple of 4096");
  }
  if (options.queue_depth == 0 || options.queue_depth > 4096) {
    config::fail(config::join(path, "queue_depth"), "must be between 1 and 4096");
  }
  return options;
}

[[noreturn]] void fail_io(const std::string& what, int error) {
  throw Error(ErrorCode::kIoError, what + ": " + std::strerror(error));
}

class FileBackend final : public Backend {
 public:
  FileBackend(const nlohmann::json& json, const BackendContext& context)
      : options_(read_options(json, context.config_path)), name_(context.target_name) {
    if (std::filesystem::exists(options_.path)) {
      open_existing();
    } else {
      create_new();
    }
    int flags = O_RDWR | O_CLOEXEC | (options_.direct_io ? O_DIRECT : 0);
    fd_ = ::open(options_.path.c_str(), flags);
    if (fd_ < 0) fail_io("target \"" + name_ + "\": cannot open " + options_.path, errno);
    io_ = make_io_engine(options_.io_engine, fd_, options_.queue_depth);
    if (options_.mapped_writes && !options_.direct_io) map_file();
  }

  ~FileBackend() override {
    if (map_ != nullptr) ::munmap(map_, kBlock + options_.capacity);
    io_.reset();
    journal_.reset();
    if (fd_ >= 0) ::close(fd_);
    if (destroy_when_closed_) {
      std::error_code ignored;
      std::filesystem::remove(options_.path, ignored);
      std::filesystem::remove(options_.path + ".journal", ignored);
    }
  }

  static nlohmann::json example_config(const std::string& scratch_dir) {
    return {{"path", scratch_dir + "/blob-target"}, {"capacity", 64ull << 20}};
  }

  std::string_view type() const override { return "file"; }
  nlohmann::json config() const override {
    return {{"path", options_.path},
            {"capacity", options_.capacity},
            {"direct_io", options_.direct_io},
            {"io_engine", io_ ? std::string(io_->name()) : "auto"},
            {"queue_depth", options_.queue_depth},
            {"mapped_writes", options_.mapped_writes}};
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
    return io_result("write", io_->write(data, at));
  }

  Status read(RegionId id, uint64_t offset, std::span<std::byte> out) override {
    Region region;
    if (Status status = locate(id, offset, out.size(), region); !status.ok()) return status;
    const uint64_t at = region.offset + offset;
    if (needs_bounce(out.data(), at, out.size())) return bounced_read(out, at);
    return io_result("read", io_->read(out, at));
  }

  Status persist(RegionId id, uint64_t offset, uint64_t size) override {
    Region region;
    if (Status status = locate(id, offset, size, region); !status.ok()) return status;
    if (size > 0) {
      if (Status status = io_result("sync", io_->sync(region.offset + offset, size));
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
    if (map_ == nullptr || size == 0 || !locate(id, offset, size, region).ok()) return false;
    const uint64_t at = region.offset + offset;
    const uint64_t first = at / kBlock * kBlock;
    const uint64_t pages = (at + size - first + kBlock - 1) / kBlock;
    std::vector<unsigned char> resident(pages);
    if (::mincore(map_ + first, pages * kBlock, resident.data()) != 0) return false;
    for (unsigned char page : resident) {
      if ((page & 1) == 0) return false;
    }
    out.bytes = {map_ + at, size};
    out.keep_alive = region.users;  // the extent stays the region's until the pull is done
    return true;
  }

  void start_persist(RegionId id, uint64_t offset, uint64_t size) override {
    Region region;
    if (size == 0 || !locate(id, offset, size, region).ok()) return;
    io_->start_writeback(region.offset + offset, size);  // a hint: persist() reports failures
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

  void create_new() {
    std::random_device random;
    uuid_ = (static_cast<uint64_t>(random()) << 32) ^ random();
    // The journal first: a data file that exists always has one (a crash in between leaves a
    // lone journal, replaced on the next creation).
    journal_ = std::make_unique<Journal>(options_.path + ".journal", uuid_, true, nullptr);
    const int fd = ::open(options_.path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) fail_io("target \"" + name_ + "\": cannot create " + options_.path, errno);
    const uint64_t total = kBlock + options_.capacity;
    int error = ::posix_fallocate(fd, 0, static_cast<off_t>(total));
    if (error == EOPNOTSUPP || error == EINVAL)
      error = ::ftruncate(fd, static_cast<off_t>(total)) == 0 ? 0 : errno;
    if (error == 0) error = write_header(fd);
    if (error == 0 && ::fdatasync(fd) != 0) error = errno;
    ::close(fd);
    if (error == 0) error = sync_parent_directory(options_.path);
    if (error != 0) {
      std::filesystem::remove(options_.path);
      journal_.reset();
      std::filesystem::remove(options_.path + ".journal");
      fail_io("target \"" + name_ + "\": cannot reserve " + std::to_string(total) + " bytes in " +
                  options_.path,
              error);
    }
    allocator_ = std::make_unique<ExtentAllocator>(kBlock, options_.capacity, kBlock);
  }

  int write_header(int fd) const {
    AlignedBuffer header(kBlock, kBlock);
    std::byte* bytes = header.span().data();
    std::memset(bytes, 0, kBlock);
    std::memcpy(bytes, kMagic, 8);
    std::memcpy(bytes + 8, &kVersion, 4);
    const uint32_t block = kBlock;
    std::memcpy(bytes + 12, &block, 4);
    std::memcpy(bytes + 16, &uuid_, 8);
    std::memcpy(bytes + 24, &options_.capacity, 8);
    return ::pwrite(fd, bytes, kBlock, 0) == static_cast<ssize_t>(kBlock) ? 0
                                                                          : (errno ? errno : EIO);
  }

  void open_existing() {
    const int fd = ::open(options_.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail_io("target \"" + name_ + "\": cannot open " + options_.path, errno);
    std::byte bytes[32] = {};
    const ssize_t n = ::pread(fd, bytes, sizeof(bytes), 0);
    struct stat info {};
    const bool stat_ok = ::fstat(fd, &info) == 0;
    ::close(fd);
    uint32_t version = 0, block = 0;
    std::memcpy(&version, bytes + 8, 4);
    std::memcpy(&block, bytes + 12, 4);
    if (n != sizeof(bytes) || std::memcmp(bytes, kMagic, 8) != 0 || version != kVersion ||
        block != kBlock) {
      throw Error(ErrorCode::kCorruption, "target \"" + name_ + "\": " + options_.path +
                                              " is not a blob target file (version 1)");
    }
    std::memcpy(&uuid_, bytes + 16, 8);
    std::memcpy(&options_.capacity, bytes + 24, 8);
    if (!stat_ok || static_cast<uint64_t>(info.st_size) < kBlock + options_.capacity) {
      throw Error(ErrorCode::kCorruption,
                  "target \"" + name_ + "\": " + options_.path + " is shorter than its capacity");
    }
    uint64_t highest = 0;
    journal_ = std::make_unique<Journal>(
        options_.path + ".journal", uuid_, false, [&](const JournalRecord& record) {
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
    allocator_ = std::make_unique<ExtentAllocator>(kBlock, options_.capacity, kBlock);
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

  // Maps the whole file for direct_write(), when every byte of it has its blocks (so that a
  // write through the mapping never needs space: a fault that cannot get it would be SIGBUS).
  // Without the mapping, writes go through staging buffers.
  void map_file() {
    struct stat info {};
    const uint64_t total = kBlock + options_.capacity;
    if (::fstat(fd_, &info) != 0 || static_cast<uint64_t>(info.st_blocks) * 512 < total) return;
    void* map = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (map != MAP_FAILED) map_ = static_cast<std::byte*>(map);
  }

  // ---- helpers --------------------------------------------------------------------------------

  // Journal syncs go through the I/O engine, so that with io_uring they do not block the
  // execution stream (a persist overlapping a transfer keeps the network side running).
  Journal::Datasync journal_sync() {
    return [this](int fd) { return io_->sync_file(fd); };
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
      if (Status status = io_result("read", io_->read(blocks, start)); !status.ok()) return status;
    }
    std::memcpy(blocks.data() + (at - start), data.data(), data.size());
    return io_result("write", io_->write(blocks, start));
  }

  Status bounced_read(std::span<std::byte> out, uint64_t at) {
    const uint64_t start = at / kBlock * kBlock;
    const uint64_t end = (at + out.size() + kBlock - 1) / kBlock * kBlock;
    AlignedBuffer buffer(end - start, kBlock);
    if (Status status = io_result("read", io_->read(buffer.span(), start)); !status.ok())
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
  uint64_t uuid_ = 0;
  int fd_ = -1;
  std::byte* map_ = nullptr;  // the whole file, shared, when mapped_writes (see map_file)
  std::unique_ptr<IoEngine> io_;
  std::unique_ptr<Journal> journal_;

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
