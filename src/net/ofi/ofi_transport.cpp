// Setup, peers, send, the progress loop and close of the ofi transport.

#include "net/ofi/ofi_transport.hpp"

#include <rdma/fi_cm.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_rma.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <random>

#include "dango/common/error.hpp"
#include "dango/common/log.hpp"
#include "net/host_port.hpp"
#include "net/send_checks.hpp"

namespace dango::net::ofi {
namespace {

// Packets larger than this gain nothing (the provider moves big messages by rendezvous anyway)
// and cost receive-buffer memory: kReceiveBuffers of them are posted per transport.
constexpr size_t kMaxPacketSize = size_t{64} << 10;
constexpr size_t kReceiveBuffers = 32;
constexpr size_t kMaxFreeTxBuffers = 64;

// Providers whose CQ is opened without a wait object. The tcp provider's wait object is an epoll
// set over its sockets, and having one slows every message, polled or not, sleeping or not: a
// raw fi_send/fi_cq_read ping-pong of 96 bytes over tcp;ofi_rxm took 11.0 us per round trip
// with FI_WAIT_NONE against 12.9-13.0 us with FI_WAIT_FD, FI_WAIT_POLLFD or FI_WAIT_UNSPEC (median
// of 4 runs each, same machine and hour). Such a transport sleeps in naps instead (nap_): an
// idle one answers its first message up to a nap late (500 us, 10 ms after a second of quiet).
// DANGO_OFI_CQ_WAIT=fd gives every provider a wait object (wake on arrival, slower messages);
// DANGO_OFI_CQ_WAIT=none polls every provider.
constexpr std::string_view kPolledProviders[] = {"tcp;ofi_rxm"};
constexpr const char* kCqWaitVariable = "DANGO_OFI_CQ_WAIT";

// Whether `provider`'s CQ is opened without a wait object.
bool polled_cq(std::string_view provider) {
  const char* choice = std::getenv(kCqWaitVariable);
  if (choice == nullptr || *choice == '\0') {
    return std::find(std::begin(kPolledProviders), std::end(kPolledProviders), provider) !=
           std::end(kPolledProviders);
  }
  const std::string_view value(choice);
  if (value == "fd") return false;
  if (value == "none") return true;
  throw NetworkError(std::string(kCqWaitVariable) + "=" + choice +
                     ": expected \"fd\" (sleep on the completion queue) or \"none\" (poll it)");
}

spdlog::logger& logger() {
  static const auto instance = dango::log::get("net");
  return *instance;
}

// ofi+shm is left out: libfabric 1.17's shm provider crashes (SIGSEGV in fi_inject) when a
// message goes to a peer whose process has gone, which an RPC runtime must survive; same-node
// traffic has Dango's own sm transport. ofi+sockets (a deprecated provider) is left out too.
const bool registered = [] {
  for (const char* scheme : {"ofi+tcp", "ofi+verbs", "ofi+cxi", "ofi+efa"}) {
    register_transport(scheme, [](std::string_view address, const TransportOptions& options) {
      return std::unique_ptr<Transport>(std::make_unique<OfiTransport>(address, options));
    });
  }
  return true;
}();

}  // namespace

OfiTransport::OfiTransport(std::string_view address, const TransportOptions& options)
    : options_(options), codec_("", 0), regions_(std::make_shared<RegionTable>()) {
  (void)registered;
  auto [scheme, location] = split_address(address);
  scheme_ = std::string(scheme);
  provider_ = provider_for_scheme(scheme);
  if (provider_.empty()) {
    throw NetworkError("ofi transport cannot serve address \"" + std::string(address) + "\"");
  }
  if (options_.max_message_size == 0 || options_.bulk_chunk_size == 0) {
    throw ConfigError(scheme_ + " transport: max_message_size and bulk_chunk_size must be > 0");
  }
  const bool listen = options_.listen && !location.empty();
  HostPort where;
  // Providers with IP addresses listen where told; the others (shm, cxi, efa: hex names) choose
  // their own name, whatever follows "://".
  const bool ip_provider = provider_ == "tcp;ofi_rxm" || provider_ == "verbs;ofi_rxm" ||
                           provider_ == "sockets";
  if (listen && ip_provider) where = parse_host_port(location, address);
  InfoPtr info = choose_info(scheme_, provider_, where.host.empty() ? nullptr : where.host.c_str(),
                             where.host.empty() ? nullptr : where.port.c_str());
  codec_ = NameCodec(scheme_, info->addr_format);
  incarnation_ = (uint64_t{std::random_device{}()} << 32) | std::random_device{}() | 1;
  sender_flags_ = listen ? kSenderListens : 0;
  try {
    wake_fd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    epoll_fd_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!wake_fd_ || !epoll_fd_) {
      throw NetworkError(scheme_ + " transport: cannot create eventfd/epoll");
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wake_fd_.get();
    ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, wake_fd_.get(), &ev);
    nap_fd_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!nap_fd_) throw NetworkError(scheme_ + " transport: cannot create a timerfd");
    ev.data.fd = nap_fd_.get();
    ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, nap_fd_.get(), &ev);
    open_endpoint(*info);
    post_receive_buffers();
  } catch (...) {
    closed_.store(true);
    teardown();
    throw;  // the descriptors close with their members
  }
  if (listen) address_ = codec_.to_address(name_);
  logger().debug("{} transport ready: provider {}, name {}, packet {} B, inject {} B, mr_mode {:#x}",
                 scheme_, info->fabric_attr->prov_name, codec_.to_address(name_), packet_size_,
                 inject_size_, mr_mode_);
}

OfiTransport::~OfiTransport() { close(); }

void OfiTransport::open_endpoint(const fi_info& info) {
  auto check = [&](int rc, const char* what) {
    if (rc != 0) {
      throw NetworkError(scheme_ + " transport: " + what + " failed for provider " +
                         info.fabric_attr->prov_name + ": " + fi_error_text(rc));
    }
  };
  mr_mode_ = static_cast<uint64_t>(info.domain_attr->mr_mode);
  inject_size_ = info.tx_attr->inject_size;
  max_rma_ = info.ep_attr->max_msg_size;
  packet_size_ = std::min(kMaxPacketSize, info.ep_attr->max_msg_size);
  check(fi_fabric(info.fabric_attr, &fabric_, nullptr), "fi_fabric");
  check(fi_domain(fabric_, const_cast<fi_info*>(&info), &domain_, nullptr), "fi_domain");

  fi_cq_attr cq_attr{};
  cq_attr.format = FI_CQ_FORMAT_MSG;
  cq_attr.size = info.tx_attr->size + info.rx_attr->size;
  const bool polled = polled_cq(provider_);
  cq_attr.wait_obj = polled ? FI_WAIT_NONE : FI_WAIT_FD;
  if (polled || fi_cq_open(domain_, &cq_attr, &cq_, nullptr) != 0) {
    cq_attr.wait_obj = FI_WAIT_NONE;  // progress() naps instead of sleeping on the CQ
    check(fi_cq_open(domain_, &cq_attr, &cq_, nullptr), "fi_cq_open");
  } else if (fi_control(&cq_->fid, FI_GETWAIT, &cq_fd_) != 0) {
    cq_fd_ = -1;
  }
  if (cq_fd_ >= 0) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = cq_fd_;
    ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, cq_fd_, &ev);
  }
  fi_av_attr av_attr{};
  av_attr.type = info.domain_attr->av_type;
  check(fi_av_open(domain_, &av_attr, &av_, nullptr), "fi_av_open");
  check(fi_endpoint(domain_, const_cast<fi_info*>(&info), &ep_, nullptr), "fi_endpoint");
  check(fi_ep_bind(ep_, &av_->fid, 0), "binding the address vector");
  check(fi_ep_bind(ep_, &cq_->fid, FI_TRANSMIT | FI_RECV), "binding the completion queue");
  check(fi_enable(ep_), "fi_enable");

  std::vector<std::byte> raw(256);
  size_t length = raw.size();
  check(fi_getname(&ep_->fid, raw.data(), &length), "fi_getname");
  name_ = codec_.normalize({raw.data(), std::min(length, raw.size())});
  if (name_.empty()) throw NetworkError(scheme_ + " transport: unusable endpoint name");
  if (packet_size_ <= sizeof(PacketHeader) + name_.size()) {
    throw NetworkError(scheme_ + " transport: provider messages of " +
                       std::to_string(packet_size_) + " bytes are too small for a packet header");
  }
}

void OfiTransport::register_bytes(std::span<std::byte> bytes, uint64_t access, fid_mr** mr,
                                  void** desc, uint64_t* key) {
  uint64_t requested = (mr_mode_ & FI_MR_PROV_KEY) != 0 ? 0 : next_key_.fetch_add(1);
  int rc = fi_mr_reg(domain_, bytes.data(), bytes.size(), access, 0, requested, 0, mr, nullptr);
  if (rc == 0 && (mr_mode_ & FI_MR_ENDPOINT) != 0) {
    rc = fi_mr_bind(*mr, &ep_->fid, 0);
    if (rc == 0) rc = fi_mr_enable(*mr);
    if (rc != 0) {
      fi_close(&(*mr)->fid);
      *mr = nullptr;
    }
  }
  if (rc != 0) {
    throw NetworkError(scheme_ + " transport: cannot register " + std::to_string(bytes.size()) +
                       " bytes of memory: " + fi_error_text(rc));
  }
  if (desc != nullptr) *desc = fi_mr_desc(*mr);
  if (key != nullptr) *key = fi_mr_key(*mr);
}

void OfiTransport::post_receive_buffers() {
  const bool local = (mr_mode_ & FI_MR_LOCAL) != 0;
  for (size_t i = 0; i < kReceiveBuffers; ++i) {
    auto rx = std::make_unique<RxBuffer>();
    rx->buffer.bytes = std::make_unique_for_overwrite<std::byte[]>(packet_size_);
    rx->buffer.capacity = packet_size_;
    if (local) {
      register_bytes({rx->buffer.bytes.get(), packet_size_}, FI_RECV, &rx->buffer.mr,
                     &rx->buffer.desc, nullptr);
    }
    ssize_t rc = fi_recv(ep_, rx->buffer.bytes.get(), packet_size_, rx->buffer.desc,
                         FI_ADDR_UNSPEC, static_cast<OpContext*>(rx.get()));
    rx_.push_back(std::move(rx));  // owned from here, so teardown releases its registration
    if (rc != 0) {
      throw NetworkError(scheme_ + " transport: cannot post a receive buffer: " +
                         fi_error_text(rc));
    }
  }
}

OfiPeer* OfiTransport::as_ofi_peer(const PeerRef& peer) const {
  auto* ofi_peer = dynamic_cast<OfiPeer*>(peer.get());
  return ofi_peer != nullptr && ofi_peer->owner_ == this ? ofi_peer : nullptr;
}

std::shared_ptr<OfiPeer> OfiTransport::peer_for_name(const std::string& name, bool listens) {
  std::lock_guard lock(peers_mutex_);
  auto it = peers_.find(name);
  if (it != peers_.end()) return it->second;
  if (closed_.load()) return nullptr;
  fi_addr_t fi_addr = FI_ADDR_NOTAVAIL;
  int rc = fi_av_insert(av_, name.data(), 1, &fi_addr, 0, nullptr);
  if (rc != 1) {
    logger().warn("{} transport: cannot add {} to the address vector: {}", scheme_,
                  codec_.to_address(name), fi_error_text(rc));
    return nullptr;
  }
  std::string address = codec_.to_address(name);
  if (!listens) address += " (client)";
  auto peer = std::make_shared<OfiPeer>(this, std::move(address), name, fi_addr);
  peers_.emplace(name, peer);
  return peer;
}

PeerRef OfiTransport::lookup(std::string_view address) {
  std::string key(address);
  {
    std::lock_guard lock(peers_mutex_);
    auto it = aliases_.find(key);
    if (it != aliases_.end()) return it->second;
  }
  std::string name = codec_.parse(address);  // throws on a malformed address
  auto peer = peer_for_name(name, true);
  if (!peer) {
    throw NetworkError(scheme_ + " transport cannot add \"" + key + "\" to its address vector");
  }
  std::lock_guard lock(peers_mutex_);
  if (aliases_.size() > 4096) aliases_.clear();  // names as given are only a cache
  aliases_.emplace(std::move(key), peer);
  return peer;
}

TxBuffer* OfiTransport::acquire_tx() {
  {
    std::lock_guard lock(tx_mutex_);
    if (!tx_free_.empty()) {
      TxBuffer* tx = tx_free_.back();
      tx_free_.pop_back();
      tx->in_use = true;
      return tx;
    }
  }
  auto tx = std::make_unique<TxBuffer>();
  tx->buffer.bytes = std::make_unique_for_overwrite<std::byte[]>(packet_size_);
  tx->buffer.capacity = packet_size_;
  if ((mr_mode_ & FI_MR_LOCAL) != 0) {
    register_bytes({tx->buffer.bytes.get(), packet_size_}, FI_SEND, &tx->buffer.mr,
                   &tx->buffer.desc, nullptr);
  }
  TxBuffer* raw = tx.get();
  std::lock_guard lock(tx_mutex_);
  raw->in_use = true;
  raw->slot = tx_all_.size();
  tx_all_.push_back(std::move(tx));
  return raw;
}

void OfiTransport::release_tx(TxBuffer* tx) {
  tx->peer.reset();
  std::unique_ptr<TxBuffer> dead;
  std::lock_guard lock(tx_mutex_);
  if (!tx->in_use) return;
  tx->in_use = false;
  if (tx_free_.size() < kMaxFreeTxBuffers) {
    tx_free_.push_back(tx);
    return;
  }
  // A burst of large messages: give the memory back.
  const size_t slot = tx->slot;
  dead = std::move(tx_all_[slot]);
  if (slot + 1 != tx_all_.size()) {
    tx_all_[slot] = std::move(tx_all_.back());
    tx_all_[slot]->slot = slot;
  }
  tx_all_.pop_back();
  if (dead->buffer.mr != nullptr) fi_close(&dead->buffer.mr->fid);
}

TxBuffer* OfiTransport::make_packet(const std::shared_ptr<OfiPeer>& peer, PacketType type,
                                    uint64_t message_length, uint64_t offset) {
  TxBuffer* tx = acquire_tx();
  PacketHeader header;
  header.type = static_cast<uint8_t>(type);
  header.flags = sender_flags_;
  header.name_length = static_cast<uint8_t>(name_.size());
  header.incarnation = incarnation_;
  header.destination = peer->incarnation.load(std::memory_order_relaxed);
  header.message_length = message_length;
  header.offset = offset;
  std::byte* out = tx->buffer.bytes.get();
  std::memcpy(out, &header, sizeof header);
  std::memcpy(out + sizeof header, name_.data(), name_.size());
  tx->length = sizeof header + name_.size();
  tx->peer = peer;
  tx->may_inject = false;
  tx->batch = false;
  return tx;
}

std::span<TxBuffer*> OfiTransport::split_into_packets(
    const std::shared_ptr<OfiPeer>& peer, std::span<const std::span<const std::byte>> parts,
    size_t total, std::span<TxBuffer*, 1> single, std::vector<TxBuffer*>& many) {
  // The parts are copied in: the caller may reuse them once send returns.
  const size_t room = packet_size_ - sizeof(PacketHeader) - name_.size();
  const size_t count = std::max<size_t>(1, (total + room - 1) / room);
  std::span<TxBuffer*> packets = single;
  if (count > 1) {
    many.resize(count);
    packets = many;
  }
  size_t part = 0, part_offset = 0;
  for (size_t i = 0; i < count; ++i) {
    TxBuffer* tx = make_packet(peer, PacketType::kMessage, total, i * room);
    size_t want = std::min(room, total - i * room);
    std::byte* out = tx->buffer.bytes.get() + tx->length;
    while (want > 0) {
      while (part_offset == parts[part].size()) {  // empty parts
        ++part;
        part_offset = 0;
      }
      size_t n = std::min(want, parts[part].size() - part_offset);
      std::memcpy(out, parts[part].data() + part_offset, n);
      out += n;
      want -= n;
      tx->length += n;
      part_offset += n;
    }
    tx->may_inject = true;
    packets[i] = tx;
  }
  return packets;
}

bool OfiTransport::append_to_batch(const std::shared_ptr<OfiPeer>& peer,
                                   std::span<const std::span<const std::byte>> parts,
                                   size_t total) {
  const size_t entry = sizeof(BatchLength) + total;
  if (entry > packet_size_ - sizeof(PacketHeader) - name_.size()) return false;
  std::lock_guard lock(batched_mutex_);
  TxBuffer* tx = batched_.empty() ? nullptr : batched_.back();
  if (tx == nullptr || !tx->batch || tx->peer != peer || tx->length + entry > packet_size_) {
    tx = make_packet(peer, PacketType::kMessages, 0, 0);
    tx->batch = true;
    tx->may_inject = true;
    batched_.push_back(tx);
  }
  std::byte* out = tx->buffer.bytes.get() + tx->length;
  const auto length = static_cast<BatchLength>(total);
  std::memcpy(out, &length, sizeof length);
  out += sizeof length;
  for (const auto& part : parts) {
    if (!part.empty()) std::memcpy(out, part.data(), part.size());
    out += part.size();
  }
  tx->length += entry;
  // The header's message_length is the payload's, so that a receiver can check it.
  const uint64_t payload = tx->length - sizeof(PacketHeader) - name_.size();
  std::memcpy(tx->buffer.bytes.get() + offsetof(PacketHeader, message_length), &payload,
              sizeof payload);
  has_batched_.store(true, std::memory_order_release);
  return true;
}

Status OfiTransport::send(const PeerRef& to, std::span<const std::span<const std::byte>> parts,
                          SendMode mode) {
  OfiPeer* raw_peer = as_ofi_peer(to);
  size_t total = 0;
  if (Status s = admit_send(scheme_, closed_.load(std::memory_order_relaxed), raw_peer, parts,
                            options_.max_message_size, total);
      !s.ok()) {
    return s;
  }
  std::shared_ptr<OfiPeer> peer(to, raw_peer);
  peer->last_traffic.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                           std::memory_order_relaxed);
  peer->lost.store(false, std::memory_order_relaxed);  // a new contact: report a loss again

  if (mode == SendMode::kBatched && append_to_batch(peer, parts, total)) return Status::Ok();
  TxBuffer* single[1];
  std::vector<TxBuffer*> many;
  std::span<TxBuffer*> packets = split_into_packets(peer, parts, total, single, many);
  if (mode == SendMode::kBatched) {
    std::lock_guard lock(batched_mutex_);
    batched_.insert(batched_.end(), packets.begin(), packets.end());
    has_batched_.store(true, std::memory_order_release);
    return Status::Ok();
  }
  return post_packets(packets);
}

void OfiTransport::flush() {
  if (!has_batched_.load(std::memory_order_acquire)) return;
  std::vector<TxBuffer*> packets;
  {
    std::lock_guard lock(batched_mutex_);
    packets.swap(batched_);
    has_batched_.store(false, std::memory_order_release);
  }
  // post_packets stops at an immediate failure; the rest (maybe to other peers) go on.
  for (size_t i = 0; i < packets.size(); ++i) {
    packets[i]->batch = false;  // closed: no longer in batched_
    auto peer = packets[i]->peer;
    Status status = post_packets({&packets[i], 1});
    if (!status.ok()) {
      std::lock_guard lock(deferred_mutex_);
      deferred_failures_.emplace_back(std::move(peer), status.message);
      has_deferred_.store(true, std::memory_order_release);
    }
  }
}

}  // namespace dango::net::ofi
