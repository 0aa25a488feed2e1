// The bulk fallback of the sm transport, for connections where process_vm_readv/writev are
// forbidden (ptrace scope, another user) or disabled (DANGO_SM_NO_CMA): the owner's progress
// thread copies between its registered memory and the ring, checking key, range and rights
// against its own registration. A get chunk is one GET_REQUEST answered by BULK_DATA records and
// a BULK_DONE; a put chunk is a PUT_REQUEST followed by BULK_DATA records, answered by BULK_DONE.

#include <algorithm>
#include <cstring>

#include "net/sm/sm_internal.hpp"
#include "net/sm/sm_transport.hpp"

namespace dango::net::sm {

void SmTransport::start_fallback(const std::shared_ptr<BulkOp>& op,
                                 const std::shared_ptr<Connection>& c) {
  // Resuming after a partial single-copy transfer is not needed: a connection without
  // cross-memory attach never starts one, and arena copies finish in the same pass.
  const size_t start = op->moved;
  const size_t chunk = options_.bulk_chunk_size;
  const size_t count = (op->size - start + chunk - 1) / chunk;
  op->connection = c;
  op->chunks_left = count;
  const size_t data_max = c->out.max_payload() - sizeof(DataHeader);
  for (size_t i = 0; i < count; ++i) {
    const uint64_t id = next_chunk_id_++;
    const size_t offset = start + i * chunk;
    const size_t length = std::min(chunk, op->size - offset);
    chunks_.emplace(id, FallbackChunk{op, offset, length});
    ChunkRequest request{id, op->remote.key, op->remote_offset + offset, length};
    std::span<const std::byte> parts[] = {as_bytes_of(request)};
    auto type = op->kind == BulkKind::kGet ? RecordType::kGetRequest : RecordType::kPutRequest;
    send_parts(*c, type, parts, sizeof request);
    if (op->kind == BulkKind::kGet) continue;
    for (size_t pos = 0; pos < length; pos += data_max) {
      const size_t n = std::min(data_max, length - pos);
      DataHeader header{id, pos};
      std::span<const std::byte> data[8];
      size_t pieces = 1;
      data[0] = as_bytes_of(header);
      std::vector<std::byte> gathered;  // only when the local range spans many segments
      for_each_piece(op->local, op->local_offset + offset + pos, n, [&](std::byte* p, size_t m) {
        if (pieces < 8) data[pieces] = {p, m};
        ++pieces;
      });
      if (pieces > 8) {
        gathered.resize(n);
        size_t at = 0;
        for_each_piece(op->local, op->local_offset + offset + pos, n, [&](std::byte* p, size_t m) {
          std::memcpy(gathered.data() + at, p, m);
          at += m;
        });
        data[1] = gathered;
        pieces = 2;
      }
      send_parts(*c, RecordType::kBulkData, std::span(data, pieces), sizeof header + n);
    }
  }
}

Status SmTransport::check_region(uint64_t key, uint64_t offset, uint64_t size, bool write,
                                 std::span<const std::span<std::byte>>* segments) {
  std::lock_guard lock(regions_->mutex);
  auto it = regions_->regions.find(key);
  if (it == regions_->regions.end()) {
    return {Status::Code::kInvalidArgument,
            "unknown memory key " + std::to_string(key) + " (region deregistered?)"};
  }
  const SmMemoryRegion& region = *it->second;
  if (write ? !allows_write(region.access()) : !allows_read(region.access())) {
    return {Status::Code::kInvalidArgument, "memory region " + std::to_string(key) +
                                                " does not allow " + (write ? "writes" : "reads")};
  }
  if (!in_bounds(offset, size, region.size())) {
    return {Status::Code::kInvalidArgument, "range " + range_text(offset, size) +
                                                " outside memory region " + std::to_string(key) +
                                                " of " + std::to_string(region.size()) + " bytes"};
  }
  *segments = region.segments();
  return Status::Ok();
}

bool SmTransport::serve_get_request(Connection& c, std::span<const std::byte> payload) {
  ChunkRequest request;
  if (payload.size() != sizeof request) return false;
  std::memcpy(&request, payload.data(), sizeof request);
  std::span<const std::span<std::byte>> segments;
  Status status = check_region(request.key, request.offset, request.size, false, &segments);
  if (status.ok()) {
    const size_t data_max = c.out.max_payload() - sizeof(DataHeader);
    for (size_t pos = 0; pos < request.size; pos += data_max) {
      const size_t n = std::min<size_t>(data_max, request.size - pos);
      DataHeader header{request.chunk_id, pos};
      std::vector<std::span<const std::byte>> parts{as_bytes_of(header)};
      for_each_piece(segments, request.offset + pos, n,
                     [&](std::byte* p, size_t m) { parts.emplace_back(p, m); });
      send_parts(c, RecordType::kBulkData, parts, sizeof header + n);
    }
  }
  send_bulk_done(c, request.chunk_id, status);
  return true;
}

bool SmTransport::accept_put_request(Connection& c, std::span<const std::byte> payload) {
  ChunkRequest request;
  if (payload.size() != sizeof request) return false;
  std::memcpy(&request, payload.data(), sizeof request);
  IncomingPut put;
  put.status = check_region(request.key, request.offset, request.size, true, &put.segments);
  put.offset = request.offset;
  put.size = request.size;
  if (request.size == 0) {
    send_bulk_done(c, request.chunk_id, put.status);
    return true;
  }
  return c.incoming_puts.emplace(request.chunk_id, std::move(put)).second;
}

bool SmTransport::receive_bulk_data(Connection& c, std::span<const std::byte> payload) {
  DataHeader header;
  if (payload.size() < sizeof header) return false;
  std::memcpy(&header, payload.data(), sizeof header);
  auto data = payload.subspan(sizeof header);
  // A put arriving at the owner.
  if (auto it = c.incoming_puts.find(header.chunk_id); it != c.incoming_puts.end()) {
    IncomingPut& put = it->second;
    if (header.position != put.received || data.size() > put.size - put.received) return false;
    if (put.status.ok()) {
      const std::byte* from = data.data();
      for_each_piece(put.segments, put.offset + header.position, data.size(),
                     [&](std::byte* p, size_t n) {
                       std::memcpy(p, from, n);
                       from += n;
                     });
    }
    put.received += data.size();
    if (put.received == put.size) {
      send_bulk_done(c, header.chunk_id, put.status);
      c.incoming_puts.erase(it);
    }
    return true;
  }
  // A get reply arriving at the requester.
  auto it = chunks_.find(header.chunk_id);
  if (it == chunks_.end()) return true;  // its operation already failed
  FallbackChunk& chunk = it->second;
  if (chunk.op->connection.get() != &c || chunk.op->kind != BulkKind::kGet ||
      header.position != chunk.received || data.size() > chunk.size - chunk.received) {
    return false;
  }
  const std::byte* from = data.data();
  for_each_piece(chunk.op->local, chunk.op->local_offset + chunk.op_offset + header.position,
                 data.size(), [&](std::byte* p, size_t n) {
                   std::memcpy(p, from, n);
                   from += n;
                 });
  chunk.received += data.size();
  return true;
}

bool SmTransport::receive_bulk_done(Connection& c, std::span<const std::byte> payload) {
  DoneHeader header;
  if (payload.size() < sizeof header || payload.size() > sizeof header + kMaxErrorText) {
    return false;
  }
  std::memcpy(&header, payload.data(), sizeof header);
  if (header.code > static_cast<uint8_t>(Status::Code::kShutdown)) return false;
  auto it = chunks_.find(header.chunk_id);
  if (it == chunks_.end()) return true;
  if (it->second.op->connection.get() != &c) return false;
  Status status{static_cast<Status::Code>(header.code),
                std::string(reinterpret_cast<const char*>(payload.data()) + sizeof header,
                            payload.size() - sizeof header)};
  if (status.ok() && it->second.op->kind == BulkKind::kGet &&
      it->second.received != it->second.size) {
    return false;
  }
  if (!status.ok()) status.message = "at " + c.description + ": " + status.message;
  finish_chunk(header.chunk_id, status);
  return true;
}

void SmTransport::send_bulk_done(Connection& c, uint64_t chunk_id, const Status& status) {
  DoneHeader header{};
  header.chunk_id = chunk_id;
  header.code = static_cast<uint8_t>(status.code);
  size_t text = status.ok() ? 0 : std::min(status.message.size(), kMaxErrorText);
  std::span<const std::byte> parts[] = {
      as_bytes_of(header), {reinterpret_cast<const std::byte*>(status.message.data()), text}};
  send_parts(c, RecordType::kBulkDone, parts, sizeof header + text);
}

void SmTransport::finish_chunk(uint64_t chunk_id, const Status& status) {
  auto it = chunks_.find(chunk_id);
  if (it == chunks_.end()) return;
  auto op = std::move(it->second.op);
  chunks_.erase(it);
  if (!status.ok() && op->first_error.ok()) op->first_error = status;
  if (--op->chunks_left == 0) op->done->complete(std::move(op->first_error));
}

}  // namespace dango::net::sm
