// Packets arriving at the ofi transport (validation, reassembly, delivery) and the liveness of
// peers (probes, loss reports).

#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <spdlog/spdlog.h>

#include <cstring>

#include "dango/common/log.hpp"
#include "net/ofi/ofi_transport.hpp"

namespace dango::net::ofi {
namespace {

spdlog::logger& logger() {
  static const auto instance = dango::log::get("net");
  return *instance;
}

int64_t now_ns() { return std::chrono::steady_clock::now().time_since_epoch().count(); }

constexpr int64_t kLivenessCheckEvery =
    std::chrono::nanoseconds(std::chrono::milliseconds(100)).count();
// Peers unused by anyone but the transport, silent this long, leave the address vector.
constexpr int64_t kForgetAfter = std::chrono::nanoseconds(std::chrono::minutes(5)).count();

}  // namespace

size_t OfiTransport::receive_completed(RxBuffer& rx, size_t length) {
  size_t handled = 0;
  if (length > 0)
    handled = handle_packet({rx.buffer.bytes.get(), std::min(length, rx.buffer.capacity)});
  if (!closed_.load()) repost(rx);  // else closed by a callback: the buffers go with the endpoint
  return handled;
}

void OfiTransport::repost(RxBuffer& rx) {
  for (;;) {
    ssize_t rc = fi_recv(ep_, rx.buffer.bytes.get(), rx.buffer.capacity, rx.buffer.desc,
                         FI_ADDR_UNSPEC, static_cast<OpContext*>(&rx));
    if (rc == 0) return;
    if (rc != -FI_EAGAIN) {
      logger().error("{} transport: cannot repost a receive buffer: {}", scheme_,
                     fi_error_text(rc));
      return;
    }
    // The receive queue is full only while completions wait to be read; make room.
    fi_cq_msg_entry none;
    fi_cq_read(cq_, &none, 0);
  }
}

size_t OfiTransport::handle_packet(std::span<const std::byte> packet) {
  PacketHeader header;
  auto garbage = [&](const char* why) {
    logger().warn("{} transport: dropping a malformed packet of {} bytes: {}", scheme_,
                  packet.size(), why);
    return size_t{0};
  };
  if (packet.size() < sizeof header) return garbage("shorter than a header");
  std::memcpy(&header, packet.data(), sizeof header);
  if (header.magic != kPacketMagic || header.version != kWireVersion) {
    return garbage("bad magic or version");
  }
  if (packet.size() - sizeof header < header.name_length) return garbage("truncated sender name");
  auto raw_name = packet.subspan(sizeof header, header.name_length);
  auto payload = packet.subspan(sizeof header + header.name_length);

  std::string_view raw(reinterpret_cast<const char*>(raw_name.data()), raw_name.size());
  std::shared_ptr<OfiPeer> peer;
  if (last_sender_ && raw == last_sender_raw_) {
    peer = last_sender_;
  } else {
    std::string name = codec_.normalize(raw_name);
    if (name.empty()) return garbage("sender name is not an address of this provider");
    peer = peer_for_name(name, (header.flags & kSenderListens) != 0);
    if (!peer) return 0;
    last_sender_raw_.assign(raw);
    last_sender_ = peer;
  }
  if (header.destination != 0 && header.destination != incarnation_) {
    logger().debug("{} transport: dropping a packet from {} meant for an earlier run", scheme_,
                   peer->address_);
    return 0;
  }
  peer->last_heard.store(now_ns(), std::memory_order_relaxed);
  peer->probe_sent = 0;
  const uint64_t known = peer->incarnation.load(std::memory_order_relaxed);
  if (header.incarnation != known) {
    peer->partial.reset();
    peer->partial_length = peer->partial_filled = 0;
    peer->discarding = false;
    if (known != 0) {
      // Same address, new process: what was sent to the old one is gone.
      restart_stream(*peer);
      logger().info("{} transport: {} restarted", scheme_, peer->address_);
      if (!peer->lost.exchange(true) && handler_ != nullptr) handler_->on_peer_lost(peer);
    }
    peer->incarnation.store(header.incarnation, std::memory_order_relaxed);
  }
  peer->lost.store(false, std::memory_order_relaxed);
  if (header.type < static_cast<uint8_t>(PacketType::kMessage) ||
      header.type > static_cast<uint8_t>(PacketType::kMessages)) {
    return garbage("unknown packet type");
  }
  return handle_in_order(peer, header, packet);
}

size_t OfiTransport::handle_in_order(const std::shared_ptr<OfiPeer>& from,
                                     const PacketHeader& header,
                                     std::span<const std::byte> packet) {
  OfiPeer& peer = *from;
  const uint64_t sequence = header.sequence;
  auto epoch = [](uint64_t s) { return static_cast<uint16_t>(s >> kSequenceEpochShift); };
  const uint64_t position_mask = (uint64_t{1} << kSequenceEpochShift) - 1;
  auto forget_early = [&](auto first, auto last) {
    for (auto it = first; it != last; ++it) peer.early_bytes -= it->second.size();
    peer.early.erase(first, last);
  };
  auto start_stream = [&](uint64_t at) {
    peer.synced = true;
    peer.next_expected = at;
    forget_early(peer.early.begin(), peer.early.lower_bound(at));
    peer.partial.reset();
    peer.partial_length = peer.partial_filled = 0;
  };
  if (header.incarnation != peer.stream_incarnation) {
    // Another process at that address: its stream starts at its first position 0.
    peer.stream_incarnation = header.incarnation;
    peer.synced = false;
    forget_early(peer.early.begin(), peer.early.end());
  }
  if (!peer.synced && (sequence & position_mask) == 0) start_stream(sequence);
  if (peer.synced && epoch(sequence) != epoch(peer.next_expected)) {
    if (static_cast<int16_t>(epoch(sequence) - epoch(peer.next_expected)) < 0)
      return 0;  // abandoned
    // The sender gave us up for lost and started over: what it had not sent is gone.
    if ((sequence & position_mask) != 0)
      peer.synced = false;  // its position 0 is still to come
    else
      start_stream(sequence);
  }
  if (peer.synced && sequence < peer.next_expected) return 0;  // a position already handled
  size_t handled = 0;
  if (!peer.synced || sequence > peer.next_expected) {
    if (peer.early.emplace(sequence, std::vector<std::byte>(packet.begin(), packet.end())).second) {
      peer.early_bytes += packet.size();
    }
    if (peer.early_bytes <= kMaxEarlyBytes) return 0;
    // A packet that never completes (a receive the provider failed): skip the gap.
    logger().warn("{} transport: packets before {} from {} never arrived; skipping them", scheme_,
                  peer.early.begin()->first, peer.address_);
    start_stream(peer.early.begin()->first);
  } else {
    ++peer.next_expected;
    handled += dispatch(from, header, packet.subspan(sizeof header + header.name_length));
  }
  while (!closed_.load() && !peer.early.empty() &&
         peer.early.begin()->first == peer.next_expected) {
    auto node = peer.early.extract(peer.early.begin());
    peer.early_bytes -= node.mapped().size();
    ++peer.next_expected;
    const std::vector<std::byte>& bytes = node.mapped();
    PacketHeader held;
    std::memcpy(&held, bytes.data(), sizeof held);
    handled += dispatch(from, held, std::span(bytes).subspan(sizeof held + held.name_length));
  }
  return handled;
}

size_t OfiTransport::dispatch(const std::shared_ptr<OfiPeer>& from, const PacketHeader& header,
                              std::span<const std::byte> payload) {
  switch (static_cast<PacketType>(header.type)) {
    case PacketType::kMessage:
      return take_message_part(from, header, payload);
    case PacketType::kPing:
      send_control(from, PacketType::kPong);
      return 0;
    case PacketType::kPong:
      return 0;
    case PacketType::kMessages:
      if (payload.size() != header.message_length) {
        logger().warn("{} transport: dropping a malformed batch from {}: its length does not match",
                      scheme_, from->address_);
        return 0;
      }
      return take_messages(from, payload);
  }
  return 0;
}

size_t OfiTransport::take_messages(const std::shared_ptr<OfiPeer>& from,
                                   std::span<const std::byte> payload) {
  OfiPeer& peer = *from;
  if (peer.partial) {
    logger().warn("{} transport: dropping a malformed message from {}: a message was cut short",
                  scheme_, peer.address_);
    peer.partial.reset();
    peer.partial_length = peer.partial_filled = 0;
  }
  peer.discarding = false;
  peer.last_traffic.store(now_ns(), std::memory_order_relaxed);
  size_t handled = 0;
  while (!payload.empty() && !closed_.load()) {
    BatchLength length = 0;
    if (payload.size() < sizeof length) break;
    std::memcpy(&length, payload.data(), sizeof length);
    payload = payload.subspan(sizeof length);
    if (length > payload.size() || length > options_.max_message_size) break;
    if (handler_ != nullptr) handler_->on_message(from, payload.first(length));
    payload = payload.subspan(length);
    ++handled;
  }
  if (!payload.empty() && !closed_.load()) {
    logger().warn("{} transport: dropping the rest of a malformed batch from {}", scheme_,
                  peer.address_);
  }
  return handled;
}

size_t OfiTransport::take_message_part(const std::shared_ptr<OfiPeer>& from,
                                       const PacketHeader& header,
                                       std::span<const std::byte> payload) {
  OfiPeer& peer = *from;
  if (header.offset != 0 && peer.discarding) return 0;
  peer.discarding = false;
  auto garbage = [&](const char* why) {
    peer.discarding = true;
    logger().warn("{} transport: dropping a malformed message from {}: {}", scheme_, peer.address_,
                  why);
    peer.partial.reset();
    peer.partial_length = peer.partial_filled = 0;
    return size_t{0};
  };
  if (header.message_length > options_.max_message_size) {
    return garbage("longer than max_message_size");
  }
  peer.last_traffic.store(now_ns(), std::memory_order_relaxed);
  if (header.offset == 0) {
    if (peer.partial) garbage("a message was cut short");
    if (payload.size() == header.message_length) {
      if (handler_ != nullptr) handler_->on_message(from, payload);
      return 1;
    }
    if (payload.empty() || payload.size() > header.message_length) {
      return garbage("packet size does not match the message length");
    }
    peer.partial = std::make_unique_for_overwrite<std::byte[]>(header.message_length);
    peer.partial_length = header.message_length;
    std::memcpy(peer.partial.get(), payload.data(), payload.size());
    peer.partial_filled = payload.size();
    return 0;
  }
  if (!peer.partial || header.offset != peer.partial_filled ||
      header.message_length != peer.partial_length || payload.empty() ||
      payload.size() > peer.partial_length - peer.partial_filled) {
    return garbage("packet out of sequence");
  }
  std::memcpy(peer.partial.get() + peer.partial_filled, payload.data(), payload.size());
  peer.partial_filled += payload.size();
  if (peer.partial_filled < peer.partial_length) return 0;
  auto message = std::move(peer.partial);
  const size_t length = peer.partial_length;
  peer.partial_length = peer.partial_filled = 0;
  if (handler_ != nullptr) handler_->on_message(from, {message.get(), length});
  return 1;
}

void OfiTransport::send_control(const std::shared_ptr<OfiPeer>& peer, PacketType type) {
  // Never injected: a probe must produce a completion, so that a failed one is seen.
  TxBuffer* tx = make_packet(peer, type, 0, 0);
  Status status = post_packets({&tx, 1});
  if (!status.ok() && status.code != Status::Code::kShutdown) peer_failed(peer, status.message);
}

void OfiTransport::check_liveness(int64_t now) {
  next_liveness_check_ = now + kLivenessCheckEvery;
  const int64_t probe_after = std::chrono::nanoseconds(kProbeAfter).count();
  const int64_t watch = std::chrono::nanoseconds(kWatchWindow).count();
  const int64_t answer_within = std::chrono::nanoseconds(options_.connect_timeout).count();
  std::vector<std::shared_ptr<OfiPeer>> to_probe, silent;
  {
    std::lock_guard lock(peers_mutex_);
    for (auto it = peers_.begin(); it != peers_.end();) {
      auto& peer = it->second;
      const int64_t heard = peer->last_heard.load(std::memory_order_relaxed);
      const int64_t traffic = peer->last_traffic.load(std::memory_order_relaxed);
      const bool bulk = peer->bulk_in_flight.load(std::memory_order_relaxed) > 0;
      if (peer.use_count() == 1 && !bulk && now - std::max(heard, traffic) > kForgetAfter) {
        fi_addr_t addr = peer->fi_addr.load();
        fi_av_remove(av_, &addr, 1, 0);
        it = peers_.erase(it);
        continue;
      }
      ++it;
      if (peer->lost.load(std::memory_order_relaxed) || (!bulk && now - traffic > watch)) continue;
      if (peer->probe_sent != 0) {
        if (now - peer->probe_sent > answer_within) silent.push_back(peer);
      } else if (now - heard > probe_after) {
        peer->probe_sent = now;
        to_probe.push_back(peer);
      }
    }
  }
  for (auto& peer : to_probe) send_control(peer, PacketType::kPing);
  for (auto& peer : silent) {
    peer_failed(peer, "no answer to a liveness probe within " +
                          std::to_string(options_.connect_timeout.count()) + " ms");
  }
}

void OfiTransport::peer_failed(const std::shared_ptr<OfiPeer>& peer, const std::string& why) {
  if (!peer) return;
  peer->probe_sent = 0;
  peer->partial.reset();
  peer->partial_length = peer->partial_filled = 0;
  // Whatever answers next at this address is a new process (or the old one, which re-announces
  // itself): packets still held by the provider for the old one will be dropped there.
  peer->incarnation.store(0, std::memory_order_relaxed);
  const Status lost{Status::Code::kDisconnected, "peer " + peer->address_ + " lost: " + why};
  fail_bulk(peer.get(), lost);
  {
    // What waits for the provider to take it would go to whatever answers at this address next;
    // the packets that follow start a new stream, so that the receiver does not wait for these.
    std::unique_lock lock(post_mutex_);
    std::vector<OpContext*> dropped = drop_queued(peer.get());
    lock.unlock();
    restart_stream(*peer);
    fail_dropped(dropped, lost);
  }
  if (peer->lost.exchange(true)) return;
  forget_connection(*peer);
  logger().info("{} transport: peer {} lost: {}", scheme_, peer->address_, why);
  if (handler_ != nullptr && !closed_.load()) handler_->on_peer_lost(peer);
}

void OfiTransport::restart_stream(OfiPeer& peer) {
  std::lock_guard lock(post_mutex_);
  const uint64_t epoch = (peer.next_sequence >> kSequenceEpochShift) + 1;
  peer.next_sequence = (epoch & 0xffff) << kSequenceEpochShift;
}

void OfiTransport::forget_connection(OfiPeer& peer) {
  std::lock_guard lock(post_mutex_);  // no post uses the old entry meanwhile
  if (closed_.load()) return;
  fi_addr_t old = peer.fi_addr.load();
  fi_av_remove(av_, &old, 1, 0);
  fi_addr_t fresh = FI_ADDR_NOTAVAIL;
  if (fi_av_insert(av_, peer.name_.data(), 1, &fresh, 0, nullptr) != 1) {
    logger().warn("{} transport: cannot re-add {} to the address vector", scheme_, peer.address_);
  }
  peer.fi_addr.store(fresh);
}

void OfiTransport::report_deferred_failures() {
  std::vector<std::pair<std::shared_ptr<OfiPeer>, std::string>> failures;
  {
    std::lock_guard lock(deferred_mutex_);
    failures.swap(deferred_failures_);
    has_deferred_.store(false, std::memory_order_release);
  }
  for (auto& [peer, why] : failures) peer_failed(peer, why);
}

}  // namespace dango::net::ofi
