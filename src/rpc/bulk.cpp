// Bulk transfers of the engine: exposing memory (registered with each of the engine's
// transports), engine-owned exposed memory, and pull/push over the transport of the peer.

#include <algorithm>
#include <cstring>
#include <mutex>

#include "dango/common/error.hpp"
#include "rpc/engine_impl.hpp"

namespace dango::rpc {
namespace detail {

// Memory exposed by this process and its registration with each transport: those the engine had
// when it was exposed, and any other the memory is later used with locally. Registrations go
// before the memory they register (`owned`, for engine-allocated memory).
class Exposure {
 public:
  Exposure(const void* engine, std::span<const std::span<std::byte>> segments, Access access,
           std::shared_ptr<net::MemoryRegion> owned = nullptr)
      : engine_(engine),
        owned_(std::move(owned)),
        segments_(segments.begin(), segments.end()),
        access_(access) {}

  // The engine that exposed the memory: only it may use the handle as the local side.
  const void* engine() const { return engine_; }

  std::span<const std::span<std::byte>> segments() const { return segments_; }

  // The registration with `transport`, made now if the memory has none there yet.
  net::MemoryRegion& region_for(net::Transport& transport) {
    std::lock_guard lock(mutex_);
    for (auto& r : registrations_) {
      if (r.transport == &transport) return *r.region;
    }
    std::shared_ptr<net::MemoryRegion> region = transport.register_memory(segments_, access_);
    registrations_.push_back({&transport, std::string(transport.scheme()), region});
    return *region;
  }
  // Records a registration made elsewhere (the allocating transport's own region).
  void add(net::Transport& transport, std::shared_ptr<net::MemoryRegion> region) {
    std::lock_guard lock(mutex_);
    registrations_.push_back({&transport, std::string(transport.scheme()), std::move(region)});
  }

  BulkDescriptors descriptors() const {
    std::lock_guard lock(mutex_);
    BulkDescriptors out;
    out.reserve(registrations_.size());
    for (const auto& r : registrations_) out.emplace_back(r.scheme, r.region->descriptor());
    return out;
  }

 private:
  struct Registration {
    net::Transport* transport;
    std::string scheme;
    std::shared_ptr<net::MemoryRegion> region;
  };
  const void* engine_;
  std::shared_ptr<net::MemoryRegion> owned_;
  std::vector<std::span<std::byte>> segments_;
  Access access_;
  mutable std::mutex mutex_;
  std::vector<Registration> registrations_;
};

BulkDescriptors descriptors_of(const Exposure& exposure) { return exposure.descriptors(); }
std::span<const std::span<std::byte>> segments_of(const Exposure& exposure) {
  return exposure.segments();
}

}  // namespace detail

using detail::monotonic_ns;

namespace {

// Copies between two local bulks (the in-process path): segment by segment, no transport.
void copy_local(const Bulk& from, size_t from_offset, const Bulk& to, size_t to_offset, size_t size) {
  auto locate = [](std::span<const std::span<std::byte>> segments, size_t offset) {
    size_t index = 0;
    while (index < segments.size() && offset >= segments[index].size()) offset -= segments[index++].size();
    return std::pair{index, offset};
  };
  auto src = from.segments();
  auto dst = to.segments();
  auto [si, so] = locate(src, from_offset);
  auto [di, doff] = locate(dst, to_offset);
  while (size > 0) {
    size_t n = std::min({size, src[si].size() - so, dst[di].size() - doff});
    std::memcpy(dst[di].data() + doff, src[si].data() + so, n);
    size -= n;
    so += n;
    doff += n;
    if (so == src[si].size()) ++si, so = 0;
    if (doff == dst[di].size()) ++di, doff = 0;
  }
}

bool readable(Access a) { return a == Access::kReadOnly || a == Access::kReadWrite; }
bool writable(Access a) { return a == Access::kWriteOnly || a == Access::kReadWrite; }

}  // namespace

Bulk EngineImpl::make_bulk(std::shared_ptr<detail::Exposure> exposure, Access access) {
  const size_t count = transport_count_.load(std::memory_order_acquire);
  for (size_t i = 0; i < count; ++i) exposure->region_for(*transports_[i]);
  Bulk bulk;
  for (const auto& segment : exposure->segments()) bulk.size_ += segment.size();
  bulk.exposure_ = std::move(exposure);
  bulk.access_ = access;
  bulk.owner_ = address_;
  return bulk;
}

Bulk EngineImpl::expose(std::span<const std::span<std::byte>> segments, Access access) {
  return make_bulk(std::make_shared<detail::Exposure>(this, segments, access), access);
}

ExposedMemory EngineImpl::allocate_exposed(size_t size, Access access) {
  const size_t count = transport_count_.load(std::memory_order_acquire);
  net::Transport* allocator = transports_[0].get();
  for (size_t i = 0; i < count; ++i) {
    if (transports_[i]->shares_allocated_memory()) {
      allocator = transports_[i].get();
      break;
    }
  }
  std::shared_ptr<net::MemoryRegion> region = allocator->allocate_memory(size, access);
  auto exposure = std::make_shared<detail::Exposure>(this, region->segments(), access, region);
  // A transport that shares its allocations uses that region as the registration; otherwise
  // the pages are registered like any memory (the allocation only owns them).
  if (allocator->shares_allocated_memory()) exposure->add(*allocator, region);
  ExposedMemory memory;
  if (!region->segments().empty()) memory.data_ = region->segments()[0];
  memory.bulk_ = make_bulk(std::move(exposure), access);
  return memory;
}

void EngineImpl::transfer(bool pull, const Endpoint& peer, const Bulk& remote, size_t remote_offset,
                          const Bulk& local, size_t local_offset, size_t size) {
  const char* what = pull ? "pull" : "push";
  auto fail = [&](const std::string& why) {
    throw NetworkError(std::string(what) + " of " + std::to_string(size) + " bytes " +
                       (pull ? "from " : "to ") + peer.address() + ": " + why);
  };
  if (!local.is_local() || local.exposure_->engine() != this) {
    fail("the local bulk handle was not exposed by this engine");
  }
  if (local_offset > local.size() || size > local.size() - local_offset) fail("out of bounds of the local bulk");
  // Checked here from what the handle says, so a bad request costs no round trip; the owner
  // checks again against its registration (a handle may be forged or stale).
  if (remote_offset > remote.size() || size > remote.size() - remote_offset) fail("out of bounds of the remote bulk");
  if (pull ? !readable(remote.access()) : !writable(remote.access())) fail("the remote bulk does not allow it");
  if (pull ? !writable(local.access()) : !readable(local.access())) fail("the local bulk does not allow it");
  if (size == 0) return;
  const int64_t started_ns = monitor_.load(std::memory_order_relaxed) ? monotonic_ns() : 0;
  if (peer.is_self()) {
    if (!remote.is_local()) fail("the remote bulk handle is not exposed in this process");
    if (pull) {
      copy_local(remote, remote_offset, local, local_offset, size);
    } else {
      copy_local(local, local_offset, remote, remote_offset, size);
    }
    account_bulk(pull, peer, size, false, started_ns);
    return;
  }
  net::Transport& transport = *peer.transport_;
  // A handle that never went through serialization (another engine of this process) still
  // carries its registrations.
  detail::BulkDescriptors own_descriptors;
  if (remote.exposure_) own_descriptors = remote.exposure_->descriptors();
  const std::vector<std::byte>* descriptor = nullptr;
  for (const auto& [scheme, bytes] : remote.exposure_ ? own_descriptors : remote.descriptors_) {
    if (scheme == transport.scheme()) descriptor = &bytes;
  }
  if (descriptor == nullptr) {
    fail("the remote bulk is not reachable over " + std::string(transport.scheme()) +
         " (its owner had no such transport when it exposed the memory)");
  }
  net::MemoryRegion& region = local.exposure_->region_for(transport);
  struct Done final : net::Completion {
    net::Status status;
    thread::Eventual<void> done;
    void complete(net::Status s) override {
      status = std::move(s);
      done.set_value();
    }
  } done;
  if (pull) {
    transport.get(peer.peer_, *descriptor, remote_offset, region, local_offset, size, &done);
  } else {
    transport.put(peer.peer_, *descriptor, remote_offset, region, local_offset, size, &done);
  }
  done.done.wait();
  account_bulk(pull, peer, size, !done.status.ok(), started_ns);
  if (!done.status.ok()) fail(done.status.message);
}

}  // namespace dango::rpc
