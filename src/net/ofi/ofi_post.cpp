// Posting operations to the provider, and the per-peer queues of what it would not take yet.
//
// The provider answers FI_EAGAIN when it has no room (its transmit queue is full) and, with rxm,
// for as long as it is (re)connecting to a peer: for ever when that process is dead. Each peer
// therefore queues its own operations, so that packets to it stay in order while the others'
// leave; the queues are drained in turns of one operation per peer, so a flooded peer does not
// starve a quiet one; and a peer whose queue has not moved for connect_timeout is declared lost
// (its queue dropped) rather than retried for ever. Meanwhile a queue that does not move is
// retried after a pause of an eighth of the time it has been stuck (at most kMaxRetryPause):
// each retry to a dead process is a connection attempt (a dozen system calls), and retrying at
// every progress pass made a client that had talked to a server gone since (a liveness probe
// queued for it) spend most of its time in them: empty RPCs to another server took 2.4x longer.

#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstring>

#include "net/ofi/ofi_transport.hpp"

namespace dango::net::ofi {
namespace {

int64_t now_ns() { return std::chrono::steady_clock::now().time_since_epoch().count(); }

constexpr int64_t kMaxRetryPause = std::chrono::nanoseconds(std::chrono::milliseconds(5)).count();

}  // namespace

ssize_t OfiTransport::post_now(OpContext* op) {
  if (op->kind == OpContext::Kind::kSend) {
    auto* tx = static_cast<TxBuffer*>(op);
    if (tx->may_inject && tx->length <= inject_size_) {
      ssize_t rc = fi_inject(ep_, tx->buffer.bytes.get(), tx->length, tx->peer->fi_addr.load());
      if (rc == 0) release_tx(tx);  // the provider copied it; no completion follows
      return rc;
    }
    return fi_send(ep_, tx->buffer.bytes.get(), tx->length, tx->buffer.desc,
                   tx->peer->fi_addr.load(), op);
  }
  auto* piece = static_cast<RmaPiece*>(op);
  const fi_addr_t to = piece->op->peer->fi_addr.load();
  if (piece->read) {
    return fi_read(ep_, piece->local, piece->length, piece->local_desc, to, piece->remote_address,
                   piece->key, op);
  }
  // A put is complete when the bytes are in the remote memory, not merely sent: the owner may
  // read them as soon as the requester learns of the completion (FI_DELIVERY_COMPLETE).
  iovec local{piece->local, piece->length};
  fi_rma_iov remote{piece->remote_address, piece->length, piece->key};
  fi_msg_rma message{};
  message.msg_iov = &local;
  message.desc = &piece->local_desc;
  message.iov_count = 1;
  message.addr = to;
  message.rma_iov = &remote;
  message.rma_iov_count = 1;
  message.context = op;
  return fi_writemsg(ep_, &message, FI_COMPLETION | FI_DELIVERY_COMPLETE);
}

ssize_t OfiTransport::post_or_queue(OpContext* op, const std::shared_ptr<OfiPeer>& peer) {
  ssize_t rc = peer->queued.empty() ? post_now(op) : -FI_EAGAIN;
  if (rc != -FI_EAGAIN) return rc;
  if (peer->queued.empty()) {
    peer->queued_since = now_ns();
    peer->retry_at = 0;
    next_retry_.store(0, std::memory_order_relaxed);
  }
  peer->queued.push_back(op);
  if (!peer->in_backlog) {
    peer->in_backlog = true;
    backlog_.push_back(peer);
  }
  has_queued_.store(true, std::memory_order_release);
  return 0;
}

Status OfiTransport::post_packets(std::span<TxBuffer* const> packets) {
  std::unique_lock lock(post_mutex_);
  for (size_t i = 0; i < packets.size(); ++i) {
    TxBuffer* tx = packets[i];
    if (closed_.load()) {
      for (size_t j = i; j < packets.size(); ++j) release_tx(packets[j]);
      return {Status::Code::kShutdown, scheme_ + " transport closed"};
    }
    // Numbered in posting order, the order in which the provider matches them at the receiver.
    const uint64_t sequence = tx->peer->next_sequence++;
    std::memcpy(tx->buffer.bytes.get() + offsetof(PacketHeader, sequence), &sequence,
                sizeof sequence);
    ssize_t rc = post_or_queue(tx, tx->peer);
    if (rc != 0) {
      std::string why = "cannot send to " + tx->peer->address_ + ": " + fi_error_text(rc);
      for (size_t j = i; j < packets.size(); ++j) release_tx(packets[j]);
      return {Status::Code::kDisconnected, std::move(why)};
    }
  }
  return Status::Ok();
}

void OfiTransport::drain_post_queue() {
  if (!has_queued_.load(std::memory_order_acquire)) return;
  std::vector<std::pair<OpContext*, long>> failed;
  std::vector<std::shared_ptr<OfiPeer>> stalled;
  {
    std::lock_guard lock(post_mutex_);
    const int64_t now = now_ns();
    // Turns of one operation per peer, until the provider takes no more from anyone.
    for (bool moved = true; moved && !closed_.load();) {
      moved = false;
      for (const auto& peer : backlog_) {
        if (peer->queued.empty() || peer->refused_this_turn) continue;
        if (now < peer->retry_at) {
          peer->refused_this_turn = true;
          continue;
        }
        OpContext* op = peer->queued.front();
        ssize_t rc = post_now(op);
        if (rc == -FI_EAGAIN) {
          peer->refused_this_turn = true;
          peer->retry_at = now + std::min((now - peer->queued_since) / 8, kMaxRetryPause);
          continue;
        }
        peer->queued.pop_front();
        peer->queued_since = now;
        peer->retry_at = 0;
        moved = true;
        if (rc != 0) failed.emplace_back(op, static_cast<long>(rc));
      }
    }
    const int64_t patience = std::chrono::nanoseconds(options_.connect_timeout).count();
    int64_t next_retry = INT64_MAX;
    std::erase_if(backlog_, [&](const std::shared_ptr<OfiPeer>& peer) {
      peer->refused_this_turn = false;
      if (!peer->queued.empty()) {
        if (now - peer->queued_since > patience) stalled.push_back(peer);
        next_retry = std::min(next_retry, peer->retry_at);
        return false;
      }
      peer->in_backlog = false;
      peer->retry_at = 0;
      return true;
    });
    next_retry_.store(next_retry, std::memory_order_relaxed);
    has_queued_.store(!backlog_.empty(), std::memory_order_release);
  }
  for (auto [op, rc] : failed) fail_post(op, rc);
  for (auto& peer : stalled) {
    peer_failed(peer, "the provider took nothing for it in " +
                          std::to_string(options_.connect_timeout.count()) + " ms");
  }
}

void OfiTransport::fail_post(OpContext* op, long rc) {
  if (op->kind == OpContext::Kind::kSend) {
    auto* tx = static_cast<TxBuffer*>(op);
    auto peer = tx->peer;
    release_tx(tx);
    peer_failed(peer, "send failed: " + fi_error_text(rc));
  } else if (op->kind == OpContext::Kind::kRma) {
    auto* piece = static_cast<RmaPiece*>(op);
    complete_piece(piece, {Status::Code::kDisconnected,
                           "cannot reach " + piece->op->peer->address_ + ": " + fi_error_text(rc)});
  }
}

std::vector<OpContext*> OfiTransport::drop_queued(OfiPeer* peer) {
  std::vector<OpContext*> dropped;
  for (const auto& queued : backlog_) {
    if (peer != nullptr && queued.get() != peer) continue;
    dropped.insert(dropped.end(), queued->queued.begin(), queued->queued.end());
    queued->queued.clear();
  }
  // The emptied peers leave the backlog at the next drain_post_queue().
  return dropped;
}

void OfiTransport::fail_dropped(std::span<OpContext* const> ops, const Status& status) {
  for (OpContext* op : ops) {
    if (op->kind == OpContext::Kind::kSend) {
      release_tx(static_cast<TxBuffer*>(op));
    } else if (op->kind == OpContext::Kind::kRma) {
      complete_piece(static_cast<RmaPiece*>(op), status);
    }
  }
}

}  // namespace dango::net::ofi
