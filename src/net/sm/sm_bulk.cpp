// Bulk get/put of the sm transport (the fallback through the ring is in sm_fallback.cpp), with
// a single copy:
// - remote memory in an arena of the peer that this process has mapped: memcpy, no system call;
// - other memory: process_vm_readv/writev straight between the two address spaces;
// - where the kernel forbids that (or DANGO_SM_NO_CMA): the owner's progress thread copies
//   through the ring (GET_REQUEST -> BULK_DATA... BULK_DONE; PUT_REQUEST, BULK_DATA... ->
//   BULK_DONE), checking the key, range and access itself.
// Operations are checked in get()/put() against the descriptor (kInvalidArgument inline) and
// carried out by progress(), in steps of bulk_chunk_size so that messages interleave.

#include <sys/uio.h>

#include <algorithm>
#include <cstring>

#include "dango/common/error.hpp"
#include "net/segment_cursor.hpp"
#include "net/sm/sm_internal.hpp"
#include "net/sm/sm_transport.hpp"

namespace dango::net::sm {

// --- regions ---------------------------------------------------------------------------------

SmMemoryRegion::SmMemoryRegion(std::shared_ptr<RegionTable> table, uint64_t instance,
                               std::span<const std::span<std::byte>> segs, Access access,
                               Fd arena_fd, Mapping arena)
    : table_(std::move(table)),
      instance_(instance),
      segments_(segs.begin(), segs.end()),
      access_(access),
      arena_fd_(std::move(arena_fd)),
      arena_(std::move(arena)) {
  for (const auto& seg : segments_) size_ += seg.size();
  std::lock_guard lock(table_->mutex);
  key_ = table_->next_key++;
  table_->regions.emplace(key_, this);
}

SmMemoryRegion::~SmMemoryRegion() {
  std::vector<std::weak_ptr<Connection>> holders;
  {
    std::lock_guard lock(table_->mutex);
    table_->regions.erase(key_);
    auto it = table_->arena_holders.find(key_);
    if (it != table_->arena_holders.end()) {
      holders = std::move(it->second);
      table_->arena_holders.erase(it);
    }
  }
  // Peers that mapped this arena unmap it; until they read this, their copies see stale bytes,
  // as with any memory used after it was deregistered.
  for (const auto& weak : holders) {
    if (auto c = weak.lock(); c && c->state.load() != Connection::State::kClosed) {
      send_control(c->socket.get(), ControlType::kArenaGone, as_bytes_of(key_));
    }
  }
}

std::vector<std::byte> SmMemoryRegion::descriptor() const {
  RegionDescriptor d;
  d.instance = instance_;
  d.key = key_;
  d.size = size_;
  d.arena_id = arena_fd_ ? key_ : 0;
  d.access = access_;
  d.segments.reserve(segments_.size());
  for (const auto& seg : segments_) {
    d.segments.push_back({reinterpret_cast<uint64_t>(seg.data()), seg.size()});
  }
  return encode_descriptor(d);
}

std::unique_ptr<MemoryRegion> SmTransport::register_memory(
    std::span<const std::span<std::byte>> segments, Access access) {
  return std::make_unique<SmMemoryRegion>(regions_, instance_, segments, access);
}

std::unique_ptr<MemoryRegion> SmTransport::allocate_memory(size_t size, Access access) {
  if (size == 0) return register_memory({}, access);
  Fd fd = create_segment("arena", size);
  Mapping mapping = Mapping::map(fd.get(), size, "arena");
  std::span<std::byte> segment = mapping.bytes();
  return std::make_unique<SmMemoryRegion>(regions_, instance_, std::span(&segment, 1), access,
                                          std::move(fd), std::move(mapping));
}

void SmTransport::send_arena(Connection& c, uint64_t arena_id) {
  std::shared_ptr<Connection> self;
  {
    std::lock_guard lock(mutex_);
    auto it = connections_.find(&c);
    if (it != connections_.end()) self = it->second;
  }
  std::lock_guard lock(regions_->mutex);
  auto it = regions_->regions.find(arena_id);
  if (it == regions_->regions.end() || it->second->arena_fd() < 0 || !self) {
    send_control(c.socket.get(), ControlType::kArenaGone, as_bytes_of(arena_id));
    return;
  }
  ArenaBody body{arena_id, it->second->size(), static_cast<uint64_t>(it->second->access())};
  if (send_control(c.socket.get(), ControlType::kArena, as_bytes_of(body),
                   it->second->arena_fd())) {
    regions_->arena_holders[arena_id].push_back(self);
  }
}

void SmTransport::map_arena(Connection& c, ControlPacket& packet) {
  ArenaBody body;
  std::memcpy(&body, packet.body.data(), sizeof body);
  if (body.size == 0 || body.access < 1 || body.access > 3 ||
      segment_size(packet.fd.get()) < static_cast<int64_t>(body.size)) {
    return;
  }
  try {
    c.arenas[body.arena_id] = {Mapping::map(packet.fd.get(), body.size, "peer arena"),
                               static_cast<Access>(body.access)};
  } catch (const NetworkError& e) {
    sm_logger().warn("{}; transfers with that memory use cross-memory attach", e.what());
  }
}

// --- get/put -----------------------------------------------------------------------------------

void SmTransport::get(const PeerRef& peer, std::span<const std::byte> remote, size_t remote_offset,
                      MemoryRegion& local, size_t local_offset, size_t size, Completion* done) {
  start_bulk(BulkKind::kGet, peer, remote, remote_offset, local, local_offset, size, done);
}

void SmTransport::put(const PeerRef& peer, std::span<const std::byte> remote, size_t remote_offset,
                      MemoryRegion& local, size_t local_offset, size_t size, Completion* done) {
  start_bulk(BulkKind::kPut, peer, remote, remote_offset, local, local_offset, size, done);
}

void SmTransport::start_bulk(BulkKind kind, const PeerRef& peer_ref,
                             std::span<const std::byte> remote, size_t remote_offset,
                             MemoryRegion& local, size_t local_offset, size_t size,
                             Completion* done) {
  SmPeer* peer = as_sm_peer(peer_ref);
  auto desc = decode_descriptor(remote);
  auto* region = dynamic_cast<SmMemoryRegion*>(&local.registration());
  if (!admit_bulk(kind == BulkKind::kGet, "sm", closed_.load(), peer, desc, region, regions_.get(),
                  local_offset, remote_offset, size, done)) {
    return;
  }
  auto op = std::make_shared<BulkOp>(BulkOp{
      .kind = kind,
      .peer = std::static_pointer_cast<SmPeer>(peer->shared_from_this()),
      .remote = std::move(*desc),
      .remote_offset = remote_offset,
      .local = region->segments(),
      .local_offset = local_offset,
      .size = size,
      .done = done,
      .first_error = {},
      .connection = {},
  });
  {
    std::lock_guard lock(ops_mutex_);
    if (closed_.load()) {
      done->complete({Status::Code::kShutdown, "sm transport closed"});
      return;
    }
    submitted_.push_back(std::move(op));
    has_submitted_.store(true, std::memory_order_release);
  }
  interrupt();  // a sleeping progress() picks it up; costs nothing when none sleeps
}

size_t SmTransport::run_bulk_ops() {
  if (has_submitted_.load(std::memory_order_acquire)) {
    std::lock_guard lock(ops_mutex_);
    for (auto& op : submitted_) active_.push_back(std::move(op));
    submitted_.clear();
    has_submitted_.store(false, std::memory_order_release);
  }
  size_t handled = 0;
  running_.swap(active_);
  for (auto& op : running_) {
    if (closed_.load()) {
      active_.push_back(std::move(op));  // close() completes it
      continue;
    }
    if (step(*op, op)) {
      ++handled;
    } else {
      active_.push_back(std::move(op));
    }
  }
  running_.clear();
  return handled;
}

bool SmTransport::step(BulkOp& op, const std::shared_ptr<BulkOp>& self) {
  std::shared_ptr<Connection> c;
  Status status = connection_for(*op.peer, c);
  if (!status.ok()) {
    op.done->complete(std::move(status));
    return true;
  }
  if (c->state.load(std::memory_order_acquire) != Connection::State::kOpen) return false;
  if (op.remote.instance != c->remote_instance) {
    op.done->complete({Status::Code::kInvalidArgument,
                       "remote memory descriptor does not belong to " + op.peer->address_ +
                           " (another process, or one that restarted)"});
    return true;
  }
  const size_t length = std::min(options_.bulk_chunk_size, op.size - op.moved);
  bool copied = false;
  if (op.remote.arena_id != 0) {
    auto it = c->arenas.find(op.remote.arena_id);
    if (it != c->arenas.end() && it->second.mapping.size() >= op.remote.size) {
      // The owner's rights, not the descriptor's: a forged descriptor gains nothing here.
      const Access access = it->second.access;
      if (op.kind == BulkKind::kGet ? !allows_read(access) : !allows_write(access)) {
        op.done->complete({Status::Code::kInvalidArgument,
                           "memory region at " + op.peer->address_ + " does not allow " +
                               (op.kind == BulkKind::kGet ? "reads" : "writes")});
        return true;
      }
      status = copy_arena(op, it->second.mapping, length);
      copied = true;
    } else if (c->arenas_asked.insert(op.remote.arena_id).second) {
      // Mapped once, for every later transfer; this one goes by the other paths meanwhile.
      send_control(c->socket.get(), ControlType::kArenaRequest, as_bytes_of(op.remote.arena_id));
    }
  }
  if (!copied) {
    if (!c->cma) {
      start_fallback(self, c);
      return true;
    }
    status = copy_cma(op, c->pid, length);
  }
  if (!status.ok()) {
    op.done->complete(std::move(status));
    return true;
  }
  op.moved += length;
  if (op.moved < op.size) return false;
  op.done->complete(Status::Ok());
  return true;
}

Status SmTransport::copy_arena(BulkOp& op, const Mapping& arena, size_t length) {
  std::byte* remote = arena.data() + op.remote_offset + op.moved;
  for_each_piece(op.local, op.local_offset + op.moved, length, [&](std::byte* p, size_t n) {
    if (op.kind == BulkKind::kGet) {
      std::memcpy(p, remote, n);
    } else {
      std::memcpy(remote, p, n);
    }
    remote += n;
  });
  return Status::Ok();
}

Status SmTransport::copy_cma(BulkOp& op, pid_t pid, size_t length) {
  // Pieces contiguous on both sides, IOV_MAX at a time.
  iovec local_iov[kMaxIov];
  iovec remote_iov[kMaxIov];
  SegmentCursor local(op.local, op.local_offset + op.moved,
                      [](const std::span<std::byte>& s) { return s.size(); });
  SegmentCursor remote(op.remote.segments, op.remote_offset + op.moved,
                       [](const RemoteSegment& s) { return static_cast<size_t>(s.length); });
  size_t left = length;
  while (left > 0) {
    size_t count = 0, batch = 0;
    while (left > 0 && count < kMaxIov) {
      const size_t n = std::min({local.room(), remote.room(), left});
      local_iov[count] = {local.segment().data() + local.offset(), n};
      remote_iov[count] = {reinterpret_cast<void*>(remote.segment().address + remote.offset()), n};
      ++count;
      batch += n;
      left -= n;
      local.advance(n);
      remote.advance(n);
    }
    ssize_t moved = op.kind == BulkKind::kGet
                        ? ::process_vm_readv(pid, local_iov, count, remote_iov, count, 0)
                        : ::process_vm_writev(pid, local_iov, count, remote_iov, count, 0);
    if (moved != static_cast<ssize_t>(batch)) {
      int err = moved < 0 ? errno : EFAULT;
      auto code = err == ESRCH ? Status::Code::kDisconnected : Status::Code::kInvalidArgument;
      return {code, std::string(op.kind == BulkKind::kGet ? "get" : "put") + " from " +
                        op.peer->address_ + " (pid " + std::to_string(pid) + ") failed: " +
                        std::strerror(err) + (err == EFAULT ? " (remote memory freed?)" : "")};
    }
  }
  return Status::Ok();
}

void SmTransport::fail_bulk(const Connection* c, const Status& status) {
  std::vector<uint64_t> ids;
  for (const auto& [id, chunk] : chunks_) {
    if (c == nullptr || chunk.op->connection.get() == c) ids.push_back(id);
  }
  for (uint64_t id : ids) finish_chunk(id, status);
  if (c != nullptr) return;
  std::vector<std::shared_ptr<BulkOp>> pending;
  {
    std::lock_guard lock(ops_mutex_);
    pending = std::move(submitted_);
    submitted_.clear();
    has_submitted_.store(false);
  }
  for (auto& op : active_) pending.push_back(std::move(op));
  active_.clear();
  for (auto& op : pending) op->done->complete(status);
}

}  // namespace dango::net::sm
