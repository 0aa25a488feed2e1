// The `memory` target: regions in RAM, each its own allocation. Not persistent (persist() only
// checks its arguments). Transfers go straight between the caller's memory and the region
// (direct()), without staging buffers.
//
// The memory of erased regions is kept (up to "recycle_limit" bytes) for new regions of the same
// size: a create-write-erase cycle then writes into pages already touched, instead of taking a
// page fault every 4 KiB of each transfer (what makes fresh buffers slow).
//
// Config: {"capacity": bytes the regions may hold in all (default 0: bounded only by memory),
//          "recycle_limit": bytes of erased regions kept for reuse (default 256 MiB; 0: none)}.

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "dango/common/config.hpp"
#include "services/blob/backend.hpp"

namespace dango::blob {
namespace {

class MemoryBackend final : public Backend {
 public:
  MemoryBackend(const nlohmann::json& json, const BackendContext& context) {
    config::ConfigReader reader{json, context.config_path};
    reader.get("capacity", capacity_);
    reader.get("recycle_limit", recycler_->limit);
    reader.finish();
    name_ = context.target_name;
  }
  static nlohmann::json example_config(const std::string&) { return nlohmann::json::object(); }

  std::string_view type() const override { return "memory"; }
  nlohmann::json config() const override {
    return {{"capacity", capacity_}, {"recycle_limit", recycler_->limit}};
  }
  Usage usage() const override {
    std::shared_lock lock(mutex_);
    return {.regions = regions_.size(),
            .capacity = capacity_,
            .used_bytes = used_bytes_,
            .free_bytes = capacity_ > 0 ? capacity_ - used_bytes_ : 0};
  }

  Status create(uint64_t size, RegionId& id) override {
    {
      std::unique_lock lock(mutex_);
      if (capacity_ > 0 && size > capacity_ - used_bytes_) {
        return Status::Fail(ErrorCode::kNoSpace,
                            "target \"" + name_ + "\": no room for " + std::to_string(size) +
                                " bytes (" + std::to_string(capacity_ - used_bytes_) + " free)");
      }
      used_bytes_ += size;  // reserved now, so that concurrent creates cannot overshoot
    }
    std::shared_ptr<Region> region;
    try {
      region = std::make_shared<Region>(size, recycler_);
    } catch (const std::bad_alloc&) {
      std::unique_lock lock(mutex_);
      used_bytes_ -= size;
      return Status::Fail(ErrorCode::kNoSpace,
                          "cannot allocate a region of " + std::to_string(size) + " bytes");
    }
    std::unique_lock lock(mutex_);
    id = RegionId::from_number(next_id_++);
    regions_.emplace(id.number(), std::move(region));
    return Status::Ok();
  }

  Status write(RegionId id, uint64_t offset, std::span<const std::byte> data) override {
    DirectAccess access;
    if (Status status = direct(id, offset, data.size(), access); !status.ok()) return status;
    std::copy(data.begin(), data.end(), access.bytes.begin());
    return Status::Ok();
  }

  Status read(RegionId id, uint64_t offset, std::span<std::byte> out) override {
    DirectAccess access;
    if (Status status = direct(id, offset, out.size(), access); !status.ok()) return status;
    std::copy(access.bytes.begin(), access.bytes.end(), out.begin());
    return Status::Ok();
  }

  Status persist(RegionId id, uint64_t offset, uint64_t size) override {
    DirectAccess access;
    return direct(id, offset, size, access);
  }

  Status get_size(RegionId id, uint64_t& size) override {
    std::shared_ptr<Region> region = find(id);
    if (!region) return unknown_region(id);
    size = region->size;
    return Status::Ok();
  }

  Status erase(RegionId id) override {
    std::unique_lock lock(mutex_);
    auto it = regions_.find(id.number());
    if (it == regions_.end()) return unknown_region(id);
    used_bytes_ -= it->second->size;
    regions_.erase(it);  // the bytes go when the last DirectAccess using them does
    return Status::Ok();
  }

  Status list(std::vector<RegionId>& ids) override {
    std::shared_lock lock(mutex_);
    ids.clear();
    for (const auto& [number, region] : regions_) ids.push_back(RegionId::from_number(number));
    return Status::Ok();
  }

  bool supports_direct_access() const override { return true; }
  Status direct(RegionId id, uint64_t offset, uint64_t size, DirectAccess& out) override {
    std::shared_ptr<Region> region = find(id);
    if (!region) return unknown_region(id);
    if (Status status = check_range(id, region->size, offset, size); !status.ok()) return status;
    out.bytes = std::span<std::byte>(region->bytes.get() + offset, size);
    out.keep_alive = std::move(region);
    return Status::Ok();
  }

 private:
  // Buffers of erased regions by size, shared with the regions so that the last user of an
  // erased region's bytes hands them back.
  struct Recycler {
    std::mutex mutex;
    uint64_t limit = 256ull << 20;
    uint64_t bytes = 0;
    std::map<uint64_t, std::vector<std::unique_ptr<std::byte[]>>> free;

    std::unique_ptr<std::byte[]> take(uint64_t size) {
      std::lock_guard lock(mutex);
      auto it = free.find(size);
      if (it == free.end()) return std::make_unique_for_overwrite<std::byte[]>(size);
      std::unique_ptr<std::byte[]> buffer = std::move(it->second.back());
      it->second.pop_back();
      if (it->second.empty()) free.erase(it);
      bytes -= size;
      return buffer;
    }
    void give(uint64_t size, std::unique_ptr<std::byte[]> buffer) {
      std::lock_guard lock(mutex);
      if (bytes + size > limit) return;  // freed here
      bytes += size;
      free[size].push_back(std::move(buffer));
    }
  };

  struct Region {
    Region(uint64_t n, std::shared_ptr<Recycler> r)
        : bytes(r->take(n)), size(n), recycler(std::move(r)) {}
    ~Region() { recycler->give(size, std::move(bytes)); }
    Region(const Region&) = delete;
    Region& operator=(const Region&) = delete;
    std::unique_ptr<std::byte[]> bytes;
    uint64_t size;
    std::shared_ptr<Recycler> recycler;
  };

  std::shared_ptr<Region> find(RegionId id) const {
    std::shared_lock lock(mutex_);
    auto it = regions_.find(id.number());
    return it == regions_.end() ? nullptr : it->second;
  }

  mutable std::shared_mutex mutex_;  // guards the map only; never held across a copy
  std::map<uint64_t, std::shared_ptr<Region>> regions_;
  std::shared_ptr<Recycler> recycler_ = std::make_shared<Recycler>();
  std::string name_;
  uint64_t capacity_ = 0;
  uint64_t next_id_ = 1;
  uint64_t used_bytes_ = 0;
};

}  // namespace

DANGO_REGISTER_BLOB_BACKEND(memory, MemoryBackend);

}  // namespace dango::blob
