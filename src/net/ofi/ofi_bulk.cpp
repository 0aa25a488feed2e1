// Memory regions and one-sided get/put of the ofi transport: fi_read/fi_write on memory
// registered once per region, honouring the provider's FI_MR_* modes (virtual or offset
// addressing, provider keys, endpoint binding, local descriptors).

#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "dango/common/error.hpp"
#include "dango/common/log.hpp"
#include "net/bulk_checks.hpp"
#include "net/ofi/ofi_transport.hpp"
#include "net/segment_cursor.hpp"

namespace dango::net::ofi {
namespace {

uint64_t remote_access_flags(Access access) {
  uint64_t flags = FI_READ | FI_WRITE;  // local use: target of our gets, source of our puts
  if (allows_read(access)) flags |= FI_REMOTE_READ;
  if (allows_write(access)) flags |= FI_REMOTE_WRITE;
  return flags;
}

// Splits a transfer into pieces contiguous on both sides and at most `max_piece` long.
std::vector<std::unique_ptr<RmaPiece>> plan_pieces(
    const std::vector<OfiMemoryRegion::Segment>& locals, size_t local_offset,
    const std::vector<DescriptorSegment>& remotes, size_t remote_offset, size_t size,
    size_t max_piece, bool read, const std::shared_ptr<BulkOp>& op) {
  std::vector<std::unique_ptr<RmaPiece>> pieces;
  SegmentCursor local(locals, local_offset,
                      [](const OfiMemoryRegion::Segment& s) { return s.bytes.size(); });
  SegmentCursor remote(remotes, remote_offset,
                       [](const DescriptorSegment& s) { return static_cast<size_t>(s.length); });
  for (size_t left = size; left > 0;) {
    const size_t n = std::min({left, local.room(), remote.room(), max_piece});
    auto piece = std::make_unique<RmaPiece>();
    piece->op = op;
    piece->read = read;
    piece->local = local.segment().bytes.data() + local.offset();
    piece->local_desc = local.segment().desc;
    piece->length = n;
    piece->remote_address = remote.segment().address + remote.offset();
    piece->key = remote.segment().key;
    pieces.push_back(std::move(piece));
    left -= n;
    local.advance(n);
    remote.advance(n);
  }
  return pieces;
}

}  // namespace

OfiMemoryRegion::OfiMemoryRegion(OfiTransport& transport,
                                 std::span<const std::span<std::byte>> segments, Access access,
                                 std::span<std::byte> owned)
    : table_(transport.regions()),
      spans_(segments.begin(), segments.end()),
      access_(access),
      owned_(owned) {
  Descriptor descriptor{.access = access, .size = 0, .segments = {}};
  std::lock_guard lock(table_->mutex);
  if (table_->closed) throw NetworkError(std::string(transport.scheme()) + " transport closed");
  try {
    for (const auto& span : spans_) {
      size_ += span.size();
      if (span.empty()) continue;
      Segment segment{.bytes = span};
      transport.register_bytes(span, remote_access_flags(access), &segment.mr, &segment.desc,
                               &segment.key);
      segment.remote_address =
          transport.virtual_addressing() ? reinterpret_cast<uint64_t>(span.data()) : 0;
      registered_.push_back(segment);
      descriptor.segments.push_back(
          {.address = segment.remote_address, .key = segment.key, .length = span.size()});
    }
  } catch (...) {
    release_registrations();
    throw;
  }
  descriptor.size = size_;
  descriptor_ = encode_descriptor(descriptor);
  table_->regions.insert(this);
}

OfiMemoryRegion::~OfiMemoryRegion() {
  {
    std::lock_guard lock(table_->mutex);
    table_->regions.erase(this);
    if (!table_->closed) release_registrations();
  }
  if (!owned_.empty()) ::munmap(owned_.data(), owned_.size());
}

void OfiMemoryRegion::release_registrations() {
  for (auto& segment : registered_) {
    if (segment.mr != nullptr) fi_close(&segment.mr->fid);
    segment.mr = nullptr;
  }
}

std::unique_ptr<MemoryRegion> OfiTransport::register_memory(
    std::span<const std::span<std::byte>> segments, Access access) {
  return std::make_unique<OfiMemoryRegion>(*this, segments, access, std::span<std::byte>{});
}

std::unique_ptr<MemoryRegion> OfiTransport::allocate_memory(size_t size, Access access) {
  std::span<std::byte> memory;
  if (size > 0) {
    void* pages = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pages == MAP_FAILED) {
      throw NetworkError("cannot allocate " + std::to_string(size) +
                         " bytes of exposed memory: " + std::strerror(errno));
    }
    memory = {static_cast<std::byte*>(pages), size};
  }
  try {
    return std::make_unique<OfiMemoryRegion>(*this, std::span(&memory, 1), access, memory);
  } catch (...) {
    if (!memory.empty()) ::munmap(memory.data(), memory.size());
    throw;
  }
}

void OfiTransport::get(const PeerRef& peer, std::span<const std::byte> remote, size_t remote_offset,
                       MemoryRegion& local, size_t local_offset, size_t size, Completion* done) {
  start_bulk(BulkKind::kGet, peer, remote, remote_offset, local, local_offset, size, done);
}

void OfiTransport::put(const PeerRef& peer, std::span<const std::byte> remote, size_t remote_offset,
                       MemoryRegion& local, size_t local_offset, size_t size, Completion* done) {
  start_bulk(BulkKind::kPut, peer, remote, remote_offset, local, local_offset, size, done);
}

void OfiTransport::start_bulk(BulkKind kind, const PeerRef& peer_ref,
                              std::span<const std::byte> remote, size_t remote_offset,
                              MemoryRegion& local, size_t local_offset, size_t size,
                              Completion* done) {
  const bool read = kind == BulkKind::kGet;
  OfiPeer* raw_peer = as_ofi_peer(peer_ref);
  const auto desc = decode_descriptor(remote);
  auto* region = dynamic_cast<OfiMemoryRegion*>(&local.registration());
  if (!admit_bulk(read, scheme_, closed_.load(), raw_peer, desc, region, regions_.get(),
                  local_offset, remote_offset, size, done)) {
    return;
  }
  std::shared_ptr<OfiPeer> peer(peer_ref, raw_peer);
  peer->last_traffic.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                           std::memory_order_relaxed);
  peer->lost.store(false, std::memory_order_relaxed);

  auto op = std::make_shared<BulkOp>(BulkOp{done, 0, {}, peer});
  auto pieces = plan_pieces(region->registered(), local_offset, desc->segments, remote_offset, size,
                            std::min(options_.bulk_chunk_size, max_rma_), read, op);
  op->pieces_left = pieces.size();
  peer->bulk_in_flight.fetch_add(1, std::memory_order_relaxed);
  post_pieces(std::move(pieces), *peer, read ? "get" : "put");
}

void OfiTransport::post_pieces(std::vector<std::unique_ptr<RmaPiece>> pieces, OfiPeer& peer,
                               const char* what) {
  std::vector<RmaPiece*> order;
  order.reserve(pieces.size());
  std::unique_lock post_lock(post_mutex_);
  {
    std::lock_guard lock(ops_mutex_);
    for (auto& piece : pieces) {
      order.push_back(piece.get());
      pieces_.emplace(piece.get(), std::move(piece));
    }
  }
  if (closed_.load()) {  // none was given to the provider
    post_lock.unlock();
    for (RmaPiece* piece : order) {
      complete_piece(piece, {Status::Code::kShutdown, scheme_ + " transport closed"});
    }
    return;
  }
  // All in flight at once, in order; from the first piece the provider cannot take, queued.
  std::vector<std::pair<RmaPiece*, long>> failed;
  for (RmaPiece* piece : order) {
    ssize_t rc = post_or_queue(piece, piece->op->peer);
    if (rc != 0) failed.emplace_back(piece, static_cast<long>(rc));
  }
  post_lock.unlock();
  for (auto [piece, rc] : failed) {
    complete_piece(
        piece, {Status::Code::kDisconnected,
                std::string(what) + ": cannot reach " + peer.address_ + ": " + fi_error_text(rc)});
  }
}

size_t OfiTransport::complete_piece(RmaPiece* piece, const Status& status) {
  std::shared_ptr<BulkOp> finished;
  {
    std::lock_guard lock(ops_mutex_);
    auto it = pieces_.find(piece);
    if (it == pieces_.end()) return 0;
    auto op = std::move(it->second->op);
    pieces_.erase(it);
    if (!status.ok() && op->first_error.ok()) op->first_error = status;
    if (--op->pieces_left == 0) finished = std::move(op);
  }
  if (!finished) return 0;
  finished->peer->bulk_in_flight.fetch_sub(1, std::memory_order_relaxed);
  finished->done->complete(std::move(finished->first_error));  // outside the lock: may start more
  return 1;
}

void OfiTransport::fail_bulk(const OfiPeer* peer, const Status& status) {
  // The op cannot complete before the provider returns its pieces: it reads into or from the
  // caller's memory until then, and closing the registration would not stop it (fi_mr(3)).
  // Pieces still queued here are dropped by the caller (drop_queued); those posted are asked
  // back. Providers that cannot cancel an RMA (rxm cancels only receives) return them when the
  // connection fails or the transfer ends, or drop them when the endpoint closes.
  std::lock_guard lock(ops_mutex_);  // keeps every piece alive while it is named to fi_cancel
  for (auto& [raw, piece] : pieces_) {
    auto& op = piece->op;
    if (peer != nullptr && op->peer.get() != peer) continue;
    if (op->first_error.ok()) op->first_error = status;
    if (ep_ != nullptr) fi_cancel(&ep_->fid, static_cast<OpContext*>(raw));
  }
}

void OfiTransport::complete_abandoned_pieces(const Status& status) {
  std::vector<RmaPiece*> left;
  {
    std::lock_guard lock(ops_mutex_);
    for (auto& [raw, piece] : pieces_) left.push_back(raw);
  }
  for (RmaPiece* piece : left) complete_piece(piece, status);
}

}  // namespace dango::net::ofi
