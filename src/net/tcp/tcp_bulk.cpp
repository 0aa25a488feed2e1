// One-sided get/put of the tcp transport, emulated with request/reply frames. Payloads move
// between the socket and registered memory with sendmsg/readv gather lists: no staging copy.

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <system_error>

#include "dango/common/log.hpp"
#include "net/bulk_checks.hpp"
#include "net/tcp/tcp_transport.hpp"

namespace dango::net::tcp {

TcpMemoryRegion::TcpMemoryRegion(std::shared_ptr<RegionTable> table,
                                 std::span<const std::span<std::byte>> segs, Access access)
    : table_(std::move(table)), segments_(segs.begin(), segs.end()), access_(access) {
  for (const auto& seg : segments_) size_ += seg.size();
  std::lock_guard lock(table_->mutex);
  key_ = table_->next_key++;
  table_->regions.emplace(key_, this);
}

TcpMemoryRegion::~TcpMemoryRegion() {
  std::lock_guard lock(table_->mutex);
  table_->regions.erase(key_);
}

std::vector<std::byte> TcpMemoryRegion::descriptor() const {
  return encode_descriptor({.key = key_, .size = size_, .access = access_});
}

std::unique_ptr<MemoryRegion> TcpTransport::register_memory(
    std::span<const std::span<std::byte>> segments, Access access) {
  return std::make_unique<TcpMemoryRegion>(regions_, segments, access);
}

void TcpTransport::get(const PeerRef& peer, std::span<const std::byte> remote, size_t remote_offset,
                       MemoryRegion& local, size_t local_offset, size_t size, Completion* done) {
  start_bulk(BulkKind::kGet, peer, remote, remote_offset, local, local_offset, size, done);
}

void TcpTransport::put(const PeerRef& peer, std::span<const std::byte> remote, size_t remote_offset,
                       MemoryRegion& local, size_t local_offset, size_t size, Completion* done) {
  start_bulk(BulkKind::kPut, peer, remote, remote_offset, local, local_offset, size, done);
}

void TcpTransport::start_bulk(BulkKind kind, const PeerRef& peer_ref,
                              std::span<const std::byte> remote, size_t remote_offset,
                              MemoryRegion& local, size_t local_offset, size_t size,
                              Completion* done) {
  TcpPeer* peer = as_tcp_peer(peer_ref);
  const auto desc = decode_descriptor(remote);
  const auto* region = dynamic_cast<const TcpMemoryRegion*>(&local.registration());
  if (!admit_bulk(kind == BulkKind::kGet, "tcp", closed_.load(), peer, desc, region,
                  regions_.get(), local_offset, remote_offset, size, done)) {
    return;
  }
  const size_t chunk = options_.bulk_chunk_size;
  const size_t count = (size + chunk - 1) / chunk;
  auto op = std::make_shared<BulkOp>(BulkOp{done, count, {}});
  const uint64_t first_id = next_op_id_.fetch_add(count);
  std::vector<iovec> iov;

  for (int attempt = 0; attempt < 2; ++attempt) {
    std::shared_ptr<Connection> c;
    Status status = connection_for(*peer, c);
    if (!status.ok()) {
      done->complete(std::move(status));
      return;
    }
    std::lock_guard lock(c->out_mutex);
    auto state = c->state.load();
    if (state == Connection::State::kBroken || state == Connection::State::kClosed) continue;
    // Registered under out_mutex with the connection known open: a close that follows finds
    // and fails these chunks, so the Completion always fires.
    {
      std::lock_guard ops_lock(ops_mutex_);
      for (size_t i = 0; i < count; ++i) {
        chunks_.emplace(first_id + i,
                        PendingChunk{op, c.get(), region->segments(), local_offset + i * chunk,
                                     std::min(chunk, size - i * chunk)});
      }
    }
    // Every chunk is in flight at once; for a put the payload iovecs borrow the local memory.
    for (size_t i = 0; i < count; ++i) {
      size_t length = std::min(chunk, size - i * chunk);
      BulkFrameHeader header;
      header.base.type = static_cast<uint8_t>(kind == BulkKind::kGet ? FrameType::kGetRequest
                                                                     : FrameType::kPutRequest);
      header.base.length = kind == BulkKind::kGet ? 0 : length;
      header.bulk = {.op_id = first_id + i,
                     .key = desc->key,
                     .offset = remote_offset + i * chunk,
                     .size = length};
      iov.clear();
      iov.push_back({&header, sizeof header});
      if (kind == BulkKind::kPut) {
        gather_range(region->segments(), local_offset + i * chunk, length, iov);
      }
      if (!c->submit(epoll_fd_, iov, 1)) {
        mark_broken(*c);  // progress() closes it and fails the chunks registered above
        break;
      }
    }
    return;
  }
  done->complete(
      {Status::Code::kDisconnected,
       std::string(kind == BulkKind::kGet ? "get" : "put") + ": cannot reach " + peer->address_});
}

Status TcpTransport::check_region_access(const BulkHeader& request, bool write,
                                         std::span<const std::span<std::byte>>* segments) {
  std::lock_guard lock(regions_->mutex);
  auto it = regions_->regions.find(request.key);
  if (it == regions_->regions.end()) {
    return {Status::Code::kInvalidArgument,
            "unknown memory key " + std::to_string(request.key) + " (region deregistered?)"};
  }
  const TcpMemoryRegion& region = *it->second;
  if (write ? !allows_write(region.access()) : !allows_read(region.access())) {
    return {Status::Code::kInvalidArgument, "memory region " + std::to_string(request.key) +
                                                " does not allow " + (write ? "writes" : "reads")};
  }
  if (!in_bounds(request.offset, request.size, region.size())) {
    return {Status::Code::kInvalidArgument,
            "range " + range_text(request.offset, request.size) + " outside memory region " +
                std::to_string(request.key) + " of " + std::to_string(region.size()) + " bytes"};
  }
  *segments = region.segments();
  return Status::Ok();
}

bool TcpTransport::serve_get(Connection& c, const BulkHeader& request) {
  std::span<const std::span<std::byte>> segments;
  Status status = check_region_access(request, false, &segments);
  if (!status.ok()) {
    send_reply(c, FrameType::kGetReply, request.op_id, status);
    return !closed_.load() && c.state.load() != Connection::State::kClosed;
  }
  // The reply borrows the registered memory: written straight from it, never staged.
  BulkFrameHeader header;
  header.base.type = static_cast<uint8_t>(FrameType::kGetReply);
  header.base.length = request.size;
  header.bulk = request;
  iov_out_.clear();
  iov_out_.push_back({&header, sizeof header});
  gather_range(segments, request.offset, request.size, iov_out_);
  return submit_or_close(c, iov_out_, 1);
}

bool TcpTransport::submit_or_close(Connection& c, std::span<const iovec> iov, size_t copied) {
  std::unique_lock lock(c.out_mutex);
  auto state = c.state.load();
  if (state == Connection::State::kClosed || state == Connection::State::kBroken) return true;
  if (c.submit(epoll_fd_, iov, copied)) return true;
  int err = errno;
  lock.unlock();
  close_connection(c,
                   {Status::Code::kDisconnected,
                    "write failed: " + std::error_code(err, std::system_category()).message()},
                   true);
  return false;
}

Status TcpTransport::accept_put(Connection& c, const BulkHeader& request, uint64_t length) {
  if (length != request.size) {
    return {Status::Code::kInvalidArgument, "PUT payload of " + std::to_string(length) +
                                                " bytes announces " + std::to_string(request.size)};
  }
  std::span<const std::span<std::byte>> segments;
  Status status = check_region_access(request, true, &segments);
  if (!status.ok()) return status;
  c.receive = {};
  c.receive.kind = Connection::Receive::Kind::kPayload;
  c.receive.segments = segments;
  c.receive.offset = request.offset;
  c.receive.remaining = length;
  c.receive.frame = FrameType::kPutRequest;
  c.receive.op_id = request.op_id;
  return Status::Ok();
}

void TcpTransport::send_reply(Connection& c, FrameType type, uint64_t op_id, const Status& status) {
  BulkFrameHeader header;
  header.base.type = static_cast<uint8_t>(type);
  header.base.status = static_cast<uint8_t>(status.code);
  size_t text = status.ok() ? 0 : std::min(status.message.size(), kMaxErrorTextLength);
  header.base.length = text;
  header.bulk.op_id = op_id;
  iovec iov[2] = {{&header, sizeof header}, {const_cast<char*>(status.message.data()), text}};
  submit_or_close(c, std::span<const iovec>(iov, 2), 2);
}

std::optional<TcpTransport::PendingChunk> TcpTransport::find_chunk(const Connection& c,
                                                                   uint64_t op_id) {
  std::lock_guard lock(ops_mutex_);
  auto it = chunks_.find(op_id);
  if (it == chunks_.end() || it->second.connection != &c) return std::nullopt;
  return it->second;
}

size_t TcpTransport::complete_chunk(uint64_t op_id, const Status& status) {
  std::shared_ptr<BulkOp> finished;
  {
    std::lock_guard lock(ops_mutex_);
    auto it = chunks_.find(op_id);
    if (it == chunks_.end()) return 0;
    auto op = std::move(it->second.op);
    chunks_.erase(it);
    if (!status.ok() && op->first_error.ok()) op->first_error = status;
    if (--op->chunks_left == 0) finished = std::move(op);
  }
  if (!finished) return 0;
  // Called outside the lock: the completion may start new operations.
  finished->done->complete(std::move(finished->first_error));
  return 1;
}

void TcpTransport::fail_chunks(const Connection* c, const Status& status) {
  std::vector<std::shared_ptr<BulkOp>> finished;
  {
    std::lock_guard lock(ops_mutex_);
    for (auto it = chunks_.begin(); it != chunks_.end();) {
      if (c != nullptr && it->second.connection != c) {
        ++it;
        continue;
      }
      auto& op = it->second.op;
      if (op->first_error.ok()) op->first_error = status;
      if (--op->chunks_left == 0) finished.push_back(std::move(op));
      it = chunks_.erase(it);
    }
  }
  for (auto& op : finished) op->done->complete(std::move(op->first_error));
}

}  // namespace dango::net::tcp
