// Sending on the sm transport: the lock-free path straight into the ring, and the overflow
// queue for what does not fit (a full ring, a message larger than one record).

#include <sys/socket.h>

#include <cstring>

#include "net/send_checks.hpp"
#include "net/sm/sm_internal.hpp"
#include "net/sm/sm_transport.hpp"

namespace dango::net::sm {
namespace {

// Copies bytes [offset, offset + n) of the concatenated parts to `out`.
void gather(std::span<const std::span<const std::byte>> parts, size_t offset, size_t n,
            std::byte* out) {
  for (const auto& part : parts) {
    if (n == 0) return;
    if (offset >= part.size()) {
      offset -= part.size();
      continue;
    }
    size_t take = std::min(part.size() - offset, n);
    std::memcpy(out, part.data() + offset, take);
    out += take;
    n -= take;
    offset = 0;
  }
}

// Each sending thread remembers the connection of the last few peers it sent to, keyed by the
// peer's generation: the usual send then takes no lock and touches no reference count.
struct CachedConnection {
  const SmPeer* peer = nullptr;
  uint64_t generation = 0;
  std::shared_ptr<Connection> connection;
};
constexpr size_t kCachedConnections = 4;
thread_local CachedConnection t_cache[kCachedConnections];
thread_local size_t t_cache_next = 0;

}  // namespace

Status SmTransport::send(const PeerRef& to, std::span<const std::span<const std::byte>> parts,
                         SendMode /*mode: a batched message goes to the ring at once*/) {
  SmPeer* peer = as_sm_peer(to);
  size_t total = 0;
  if (Status s = admit_send("sm", closed_.load(std::memory_order_relaxed), peer, parts,
                            options_.max_message_size, total);
      !s.ok()) {
    return s;
  }
  const uint64_t generation = peer->generation_.load(std::memory_order_acquire);
  Connection* c = nullptr;
  for (auto& entry : t_cache) {
    if (entry.peer == peer && entry.generation == generation &&
        entry.connection->state.load(std::memory_order_relaxed) != Connection::State::kClosed) {
      c = entry.connection.get();
      break;
    }
  }
  if (c == nullptr) {
    // Entries of closed connections keep a mapping and a descriptor alive: drop them now.
    for (auto& entry : t_cache) {
      if (entry.connection &&
          entry.connection->state.load(std::memory_order_relaxed) == Connection::State::kClosed) {
        entry = {};
      }
    }
    std::shared_ptr<Connection> fresh;
    Status status = connection_for(*peer, fresh);
    if (!status.ok()) return status;
    c = fresh.get();
    auto& slot = t_cache[t_cache_next++ % kCachedConnections];
    slot = {peer, peer->generation_.load(std::memory_order_acquire), std::move(fresh)};
  }
  return send_parts(*c, RecordType::kMessage, parts, total);
}

Status SmTransport::send_parts(Connection& c, RecordType type,
                               std::span<const std::span<const std::byte>> parts, size_t total) {
  if (!c.has_overflow.load(std::memory_order_acquire) && total <= c.out.max_payload()) {
    Ring::Reservation r;
    switch (c.out.reserve(total, r)) {
      case Ring::Result::kOk:
        gather(parts, 0, total, r.payload);
        if (c.out.commit(r, type, total)) wake(c);
        return Status::Ok();
      case Ring::Result::kCorrupt:
        mark_corrupt(c);
        return {Status::Code::kDisconnected, "ring to " + c.description + " is corrupt"};
      case Ring::Result::kFull:
        break;
    }
  }
  return send_slow(c, type, parts, total);
}

Status SmTransport::send_slow(Connection& c, RecordType type,
                              std::span<const std::span<const std::byte>> parts, size_t total) {
  bool need_wake = false, corrupt = false;
  {
    std::lock_guard lock(c.out_mutex);
    if (c.state.load() == Connection::State::kClosed) {
      return {Status::Code::kDisconnected, "connection to " + c.description + " lost"};
    }
    Outgoing entry;
    entry.type = type;
    entry.bytes.resize(total);
    gather(parts, 0, total, entry.bytes.data());
    entry.message_total = total;
    if (!c.overflow.empty() || !write_outgoing(c, entry, need_wake, corrupt)) {
      c.overflow.push_back(std::move(entry));
      c.has_overflow.store(true, std::memory_order_release);
    }
  }
  if (need_wake) wake(c);
  if (corrupt) {
    mark_corrupt(c);
    return {Status::Code::kDisconnected, "ring to " + c.description + " is corrupt"};
  }
  return Status::Ok();
}

bool SmTransport::write_outgoing(Connection& c, Outgoing& entry, bool& need_wake, bool& corrupt) {
  const size_t max = c.out.max_payload();
  auto put = [&](RecordType type, size_t header, size_t offset, size_t n) {
    Ring::Reservation r;
    auto result = c.out.reserve(header + n, r);
    if (result == Ring::Result::kCorrupt) corrupt = true;
    if (result != Ring::Result::kOk) return false;
    if (header > 0) std::memcpy(r.payload, &entry.message_total, header);
    if (n > 0) std::memcpy(r.payload + header, entry.bytes.data() + offset, n);
    need_wake |= c.out.commit(r, type, header + n);
    return true;
  };
  if (entry.type != RecordType::kMessage || entry.message_total <= max) {
    return put(entry.type, 0, 0, entry.bytes.size());
  }
  // A large message: a first fragment announcing the total, then as many as it takes. Only one
  // large message is written at a time (under out_mutex), so the receiver needs one buffer.
  while (entry.message_written < entry.message_total) {
    const bool first = entry.message_written == 0;
    const size_t header = first ? sizeof(uint64_t) : 0;
    const size_t n = std::min(max - header, entry.message_total - entry.message_written);
    const bool last = entry.message_written + n == entry.message_total;
    RecordType type = first ? RecordType::kFirstFragment
                            : (last ? RecordType::kLastFragment : RecordType::kMiddleFragment);
    if (!put(type, header, entry.message_written, n)) return false;
    entry.message_written += n;
  }
  return true;
}

size_t SmTransport::drain_overflow(Connection& c) {
  bool need_wake = false, corrupt = false;
  size_t written = 0;
  {
    std::lock_guard lock(c.out_mutex);
    while (!c.overflow.empty() && write_outgoing(c, c.overflow.front(), need_wake, corrupt)) {
      c.overflow.pop_front();
      ++written;
    }
    if (c.overflow.empty()) c.has_overflow.store(false, std::memory_order_release);
  }
  if (need_wake) wake(c);
  if (corrupt) mark_corrupt(c);
  return written;
}

void SmTransport::wake(Connection& c) {
  // Best effort: a full socket already holds a wake-up the receiver has not read.
  send_control(c.socket.get(), ControlType::kWake, {});
}

void SmTransport::mark_corrupt(Connection& c) {
  // The progress thread sees the socket hang up and closes the connection.
  c.corrupt.store(true);
  ::shutdown(c.socket.get(), SHUT_RDWR);
}

}  // namespace dango::net::sm
