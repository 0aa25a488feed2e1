// The progress loop of the ofi transport: draining the completion queue, sleeping on its wait
// object, interrupt, and close (orderly release of every libfabric object).

#include <poll.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_eq.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <climits>

#include "common/epoll_wait.hpp"
#include "dango/common/log.hpp"
#include "net/ofi/ofi_transport.hpp"

namespace dango::net::ofi {
namespace {

constexpr int kCompletionBatch = 32;
constexpr int kMaxCompletionBatches = 8;  // per progress pass, so that a flood cannot starve it
constexpr auto kCloseLinger = std::chrono::milliseconds(250);
// Naps of a CQ without wait object (OfiTransport::nap_). The engine naps only after its polling
// window (10 ms by default) found nothing, so the first nap need not be shorter than this. Such
// providers move data only while polled (manual data progress), and a peer's get/put of our
// memory shows nothing here: naps are kept under kMaxNap, short enough for the socket buffers to
// carry a transfer through them, during the kLongIdle after activity. Each nap costs a wake-up
// (an idle server napping 2 ms used 1.6% of a CPU): after kLongIdle, naps grow to
// kLongIdleMaxNap. While our own get/put is in flight, the transport does not nap at all.
constexpr auto kMinNap = std::chrono::microseconds(200);
constexpr auto kMaxNap = std::chrono::microseconds(500);
constexpr auto kLongIdle = std::chrono::seconds(1);
constexpr auto kLongIdleMaxNap = std::chrono::microseconds(10000);

spdlog::logger& logger() {
  static const auto instance = dango::log::get("net");
  return *instance;
}

void close_fid(fid* f, const char* what) {
  if (f == nullptr) return;
  int rc = fi_close(f);
  if (rc != 0) logger().warn("ofi transport: closing the {} failed: {}", what, fi_error_text(rc));
}

}  // namespace

size_t OfiTransport::poll_completions() {
  fi_cq_msg_entry entries[kCompletionBatch];
  size_t handled = 0;
  for (int batch = 0; batch < kMaxCompletionBatches && !closed_.load(); ++batch) {
    ssize_t n = fi_cq_read(cq_, entries, kCompletionBatch);
    if (n == -FI_EAGAIN) break;
    if (n == -FI_EAVAIL) {
      handled += handle_error_completion();
      continue;
    }
    if (n < 0) {
      logger().error("{} transport: fi_cq_read failed: {}", scheme_, fi_error_text(n));
      break;
    }
    for (ssize_t i = 0; i < n; ++i) {
      auto* op = static_cast<OpContext*>(entries[i].op_context);
      if (op == nullptr) continue;
      switch (op->kind) {
        case OpContext::Kind::kRecv: {
          handled += receive_completed(*static_cast<RxBuffer*>(op), entries[i].len);
          break;
        }
        case OpContext::Kind::kSend:
          release_tx(static_cast<TxBuffer*>(op));
          break;
        case OpContext::Kind::kRma:
          handled += complete_piece(static_cast<RmaPiece*>(op), Status::Ok());
          break;
      }
    }
    if (n < kCompletionBatch) break;
  }
  return handled;
}

size_t OfiTransport::handle_error_completion() {
  fi_cq_err_entry error{};
  if (fi_cq_readerr(cq_, &error, 0) != 1) return 0;
  auto* op = static_cast<OpContext*>(error.op_context);
  char provider_text[256] = {};
  fi_cq_strerror(cq_, error.prov_errno, error.err_data, provider_text, sizeof provider_text);
  std::string why = fi_error_text(error.err);
  if (provider_text[0] != '\0' && why != provider_text) why += std::string(" (") + provider_text + ")";
  if (op == nullptr) {
    logger().debug("{} transport: error completion without context: {}", scheme_, why);
    return 0;
  }
  switch (op->kind) {
    case OpContext::Kind::kRecv: {
      // A message larger than a packet (FI_ETRUNC) can only come from a foreign sender.
      if (error.err == FI_ECANCELED) return 0;
      logger().warn("{} transport: receive failed: {}", scheme_, why);
      return receive_completed(*static_cast<RxBuffer*>(op), 0);
    }
    case OpContext::Kind::kSend: {
      auto* tx = static_cast<TxBuffer*>(op);
      auto peer = tx->peer;
      release_tx(tx);
      peer_failed(peer, "send failed: " + why);
      return 1;
    }
    case OpContext::Kind::kRma: {
      auto* piece = static_cast<RmaPiece*>(op);
      // Cancelled by fail_bulk: its op already carries the reason.
      if (error.err == FI_ECANCELED) return complete_piece(piece, {});
      auto peer = piece->op->peer;
      const bool refused = error.err == FI_EACCES || error.err == FI_EINVAL ||
                           error.err == FI_EKEYREJECTED || error.err == FI_EPERM ||
                           error.err == FI_EFAULT;
      // The owner refused the access (a stale or forged descriptor): the peer itself is fine.
      Status status{refused ? Status::Code::kInvalidArgument : Status::Code::kDisconnected,
                    std::string(piece->read ? "get from " : "put to ") + peer->address_ +
                        " failed: " + why};
      size_t handled = complete_piece(piece, status);
      if (!refused) peer_failed(peer, status.message);
      return handled;
    }
  }
  return 0;
}

size_t OfiTransport::progress(std::chrono::microseconds timeout) {
  if (closed_.load(std::memory_order_relaxed)) return 0;
  std::lock_guard lock(progress_mutex_);
  if (closed_.load()) return 0;
  progress_thread_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  waiting_.store(false, std::memory_order_relaxed);  // after a prepare_wait()
  size_t handled = 0;
  for (int pass = 0; pass < 2 && !closed_.load(); ++pass) {
    flush();
    drain_post_queue();
    handled += poll_completions();
    if (has_deferred_.load(std::memory_order_acquire)) report_deferred_failures();
    auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    if (now >= next_liveness_check_ && !closed_.load()) check_liveness(now);
    if (handled > 0) {
      nap_ = std::chrono::microseconds(0);
      last_activity_ = std::chrono::steady_clock::now();
    }
    if (handled > 0 || timeout.count() <= 0 || pass == 1 || closed_.load()) break;
    wait_for_work(timeout);
  }
  progress_thread_.store(std::thread::id{}, std::memory_order_relaxed);
  if (teardown_pending_) teardown();
  return handled;
}

void OfiTransport::wait_for_work(std::chrono::microseconds timeout) {
  // Wake in time for the next liveness check, so that a sleeping engine still notices a loss.
  auto until_check = std::chrono::nanoseconds(
      next_liveness_check_ - std::chrono::steady_clock::now().time_since_epoch().count());
  auto wait = std::min<std::chrono::microseconds>(
      timeout, std::max(std::chrono::duration_cast<std::chrono::microseconds>(until_check),
                        std::chrono::microseconds(1000)));
  waiting_.store(true);
  bool maybe_woken = true;  // the eventfd may hold a count to clear
  // Pairs with interrupt(): either it sees waiting_ and writes the eventfd, or we see its flag.
  if (!interrupt_pending_.exchange(false) && !has_batched_.load() && limit_by_retry(wait) &&
      may_nap()) {
    if (cq_fd_ >= 0) {
      fid* fids[] = {&cq_->fid};
      if (fi_trywait(fabric_, fids, 1) == FI_SUCCESS) {
        epoll_event events[4];
        dango::detail::epoll_wait_for(epoll_fd_.get(), events, 4, wait);
      }
    } else {
      pollfd wake{wake_fd_.get(), POLLIN, 0};
      const auto nap = next_nap(wait);
      const timespec ts{static_cast<time_t>(nap.count() / 1000000),
                        static_cast<long>(nap.count() % 1000000) * 1000};
      // A nap that ran its course saves the read (a count written after it is read next time).
      maybe_woken = ::ppoll(&wake, 1, &ts, nullptr) != 0;
    }
  }
  waiting_.store(false);
  if (maybe_woken) {
    uint64_t value;
    [[maybe_unused]] auto r = ::read(wake_fd_.get(), &value, sizeof value);
  }
  interrupt_pending_.store(false);
}

bool OfiTransport::may_nap() {
  if (cq_fd_ >= 0) return true;
  std::lock_guard lock(ops_mutex_);
  return pieces_.empty();
}

bool OfiTransport::limit_by_retry(std::chrono::microseconds& wait) const {
  if (!has_queued_.load()) return true;
  const int64_t until = next_retry_.load(std::memory_order_relaxed) -
                        std::chrono::steady_clock::now().time_since_epoch().count();
  if (until <= 0) return false;
  wait = std::min(wait,
                  std::chrono::ceil<std::chrono::microseconds>(std::chrono::nanoseconds(until)));
  return true;
}

std::chrono::microseconds OfiTransport::next_nap(std::chrono::microseconds limit) {
  const bool long_idle = std::chrono::steady_clock::now() - last_activity_ > kLongIdle;
  nap_ = std::clamp<std::chrono::microseconds>(nap_ * 2, kMinNap,
                                               long_idle ? kLongIdleMaxNap : kMaxNap);
  return std::min(nap_, limit);
}

bool OfiTransport::prepare_wait() {
  auto wake_after = std::chrono::microseconds::max();
  if (closed_.load() || has_batched_.load() || !limit_by_retry(wake_after) || !may_nap()) {
    return false;
  }
  waiting_.store(true);
  if (interrupt_pending_.exchange(false)) {
    waiting_.store(false);
    return false;
  }
  if (cq_fd_ < 0) wake_after = next_nap(wake_after);
  // The timer ends the caller's sleep for a nap or a retry; re-arming it (or disarming it: a zero
  // time) also clears what it announced before.
  itimerspec when{};
  if (wake_after != std::chrono::microseconds::max()) {
    when.it_value.tv_sec = static_cast<time_t>(wake_after.count() / 1000000);
    when.it_value.tv_nsec = static_cast<long>(wake_after.count() % 1000000) * 1000;
  }
  if (::timerfd_settime(nap_fd_.get(), 0, &when, nullptr) != 0) return false;
  if (cq_fd_ < 0) return true;
  fid* fids[] = {&cq_->fid};
  return fi_trywait(fabric_, fids, 1) == FI_SUCCESS;
}

void OfiTransport::interrupt() {
  interrupt_pending_.store(true);
  if (waiting_.load() && !closed_.load()) {
    uint64_t one = 1;
    [[maybe_unused]] auto r = ::write(wake_fd_.get(), &one, sizeof one);
  }
}

void OfiTransport::close() {
  if (closed_.exchange(true)) return;
  if (progress_thread_.load() == std::this_thread::get_id()) {
    teardown_pending_ = true;  // called by a callback: progress() tears down when it returns
    return;
  }
  uint64_t one = 1;  // a progress() asleep in another thread returns at once
  [[maybe_unused]] auto r = ::write(wake_fd_.get(), &one, sizeof one);
  std::lock_guard lock(progress_mutex_);
  teardown();
}

void OfiTransport::linger() {
  // Operations still in the provider hold its resources (rxm registers a large send's buffer until
  // the receiver has read it): give them a moment to finish, so that the domain can close.
  if (cq_ == nullptr) return;
  auto busy = [&] {
    std::scoped_lock lock(tx_mutex_, ops_mutex_);
    return tx_all_.size() > tx_free_.size() || !pieces_.empty();
  };
  auto deadline = std::chrono::steady_clock::now() + kCloseLinger;
  while (busy() && std::chrono::steady_clock::now() < deadline) {
    fi_cq_msg_entry entries[kCompletionBatch];
    ssize_t n = fi_cq_read(cq_, entries, kCompletionBatch);
    if (n == -FI_EAVAIL) {
      fi_cq_err_entry error{};
      if (fi_cq_readerr(cq_, &error, 0) == 1) {
        entries[0].op_context = error.op_context;
        n = 1;
      }
    }
    for (ssize_t i = 0; i < n; ++i) {
      auto* op = static_cast<OpContext*>(entries[i].op_context);
      if (op == nullptr) continue;
      // release_tx may free the buffer: op is not read after it.
      if (op->kind == OpContext::Kind::kSend) {
        release_tx(static_cast<TxBuffer*>(op));
      } else if (op->kind == OpContext::Kind::kRma) {
        complete_piece(static_cast<RmaPiece*>(op), {});
      }
    }
    if (n <= 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

void OfiTransport::teardown() {
  teardown_pending_ = false;
  Status why{Status::Code::kShutdown, scheme_ + " transport " + address_ + " closed"};
  fail_bulk(nullptr, why);
  {
    std::unique_lock lock(post_mutex_);  // no post is running or will start (closed_ is set)
    std::vector<OpContext*> dropped = drop_queued(nullptr);
    backlog_.clear();
    lock.unlock();
    fail_dropped(dropped, why);
  }
  {
    std::lock_guard lock(batched_mutex_);
    for (TxBuffer* tx : batched_) release_tx(tx);
    batched_.clear();
  }
  linger();
  // Closing the endpoint discards what the provider still holds (fi_endpoint(3)): from then on it
  // touches no buffer, so the operations left can complete and their memory go back to the
  // callers. The registrations go after it, as fi_mr(3) asks (no endpoint may still use them).
  if (ep_ != nullptr) close_fid(&ep_->fid, "endpoint");
  ep_ = nullptr;
  complete_abandoned_pieces(why);
  {
    std::lock_guard lock(regions_->mutex);
    regions_->closed = true;
    for (OfiMemoryRegion* region : regions_->regions) region->release_registrations();
  }
  auto close_buffer_mr = [](LocalBuffer& b) {
    if (b.mr != nullptr) close_fid(&b.mr->fid, "buffer registration");
    b.mr = nullptr;
  };
  {
    std::lock_guard lock(tx_mutex_);
    for (auto& tx : tx_all_) close_buffer_mr(tx->buffer);
    tx_free_.clear();
    tx_all_.clear();
  }
  for (auto& rx : rx_) close_buffer_mr(rx->buffer);
  rx_.clear();
  {
    std::lock_guard lock(peers_mutex_);
    peers_.clear();
    aliases_.clear();
  }
  last_sender_.reset();
  if (av_ != nullptr) close_fid(&av_->fid, "address vector");
  if (cq_ != nullptr) close_fid(&cq_->fid, "completion queue");
  if (domain_ != nullptr) close_fid(&domain_->fid, "domain");
  if (fabric_ != nullptr) close_fid(&fabric_->fid, "fabric");
  av_ = nullptr;
  cq_ = nullptr;
  domain_ = nullptr;
  fabric_ = nullptr;
  cq_fd_ = -1;
}

}  // namespace dango::net::ofi
