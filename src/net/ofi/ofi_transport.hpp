#pragma once
// The libfabric transport, "ofi+<provider>://": one reliable-datagram endpoint (FI_EP_RDM) per
// transport; messages are libfabric messages into pre-posted receive buffers, split into packets
// when larger than a packet (wire.hpp); get/put are fi_read/fi_write on memory registered once
// per region; one completion queue, drained by progress(). An idle transport sleeps on the
// CQ's wait object, or, for providers whose wait object slows every message (tcp, see
// kPolledProviders in ofi_transport.cpp), in naps between polls of a CQ without one.
//
// Peers are known by their endpoint name, which every packet carries, so a receiver can answer
// a sender it never looked up. RDM endpoints hide connections, so peer loss is found two ways: a
// failed operation (the provider reports the broken connection), and, for peers with traffic in
// the last kWatchWindow, a liveness probe after kProbeAfter of silence that must be answered
// within connect_timeout. A peer restarted at the same address is recognised by the new
// incarnation number in its packets: on_peer_lost is reported for the old one.
//
// Files: ofi_transport.cpp (setup, peers, send), ofi_post.cpp (posting, per-peer queues),
// ofi_progress.cpp (completions, sleep, interrupt, close), ofi_receive.cpp (packets, reassembly,
// liveness), ofi_bulk.cpp (memory regions, get/put), fabric.cpp (provider choice, address text),
// wire.hpp (formats). Locking order: post_mutex_, then tx_mutex_ or ops_mutex_; batched_mutex_,
// then tx_mutex_; peers_mutex_ and regions' table mutex are leaves.

#include <rdma/fabric.h>
#include <rdma/fi_domain.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/unique_fd.hpp"
#include "dango/net/transport.hpp"
#include "net/ofi/fabric.hpp"
#include "net/ofi/wire.hpp"

namespace dango::net::ofi {

class OfiTransport;

// The start of every libfabric operation's context: providers asking for FI_CONTEXT2 get their
// space, and a completion tells what finished.
struct OpContext {
  enum class Kind : uint8_t { kSend, kRecv, kRma };
  explicit OpContext(Kind k) : kind(k) {}
  fi_context2 fi{};
  Kind kind;
};

// Bytes registered for local use when the provider needs it (FI_MR_LOCAL).
struct LocalBuffer {
  std::unique_ptr<std::byte[]> bytes;
  size_t capacity = 0;
  fid_mr* mr = nullptr;
  void* desc = nullptr;
};

class OfiPeer final : public Peer {
 public:
  OfiPeer(const OfiTransport* owner, std::string address, std::string name, fi_addr_t fi_addr)
      : owner_(owner), address_(std::move(address)), name_(std::move(name)), fi_addr(fi_addr) {}
  const std::string& address() const override { return address_; }

  const OfiTransport* const owner_;  // identity only
  const std::string address_;
  const std::string name_;  // normalized endpoint name (NameCodec)
  // In the address vector; replaced after a loss (see OfiTransport::forget_connection).
  std::atomic<fi_addr_t> fi_addr;
  // Liveness, steady-clock nanoseconds.
  std::atomic<int64_t> last_heard{0};    // last packet from the peer
  std::atomic<int64_t> last_traffic{0};  // last user message or bulk operation, either way
  std::atomic<int> bulk_in_flight{0};
  std::atomic<bool> lost{false};  // on_peer_lost reported and no contact since
  std::atomic<uint64_t> incarnation{0};  // of the last packet received; 0 after a loss
  // Progress thread only.
  int64_t probe_sent = 0;    // when the unanswered probe left; 0 when none
  std::unique_ptr<std::byte[]> partial;  // the message being reassembled
  uint64_t partial_length = 0;
  uint64_t partial_filled = 0;
  bool discarding = false;  // dropping the rest of a malformed message, without more warnings
  uint64_t stream_incarnation = 0;  // of the process whose stream next_expected follows
  bool synced = false;  // next_expected is known (position 0 of the stream was seen)
  uint64_t next_expected = 0;  // sequence of the next packet from the peer to handle
  std::map<uint64_t, std::vector<std::byte>> early;  // packets completed before their turn
  size_t early_bytes = 0;
  // Guarded by the transport's post_mutex_: operations the provider would not take yet (FI_EAGAIN),
  // in order, and since when the first of them has waited (steady-clock ns).
  std::deque<OpContext*> queued;
  int64_t queued_since = 0;
  // No post is retried before then (steady-clock ns): a queue that does not move is retried less
  // and less often, since every retry to a dead process is a new connection attempt for rxm.
  int64_t retry_at = 0;
  uint64_t next_sequence = 0;  // of the next packet posted to the peer
  bool in_backlog = false;  // listed in the transport's backlog_
  bool refused_this_turn = false;  // drain_post_queue(): the provider said FI_EAGAIN this pass
};

// One packet to send; pooled.
struct TxBuffer : OpContext {
  TxBuffer() : OpContext(Kind::kSend) {}
  LocalBuffer buffer;
  size_t length = 0;
  std::shared_ptr<OfiPeer> peer;
  bool may_inject = false;
  bool batch = false;  // a kMessages packet still open to more messages (in batched_)
  // Pool bookkeeping, guarded by the transport's tx_mutex_.
  bool in_use = false;
  size_t slot = 0;  // index in the transport's tx_all_
};

struct RxBuffer : OpContext {
  RxBuffer() : OpContext(Kind::kRecv) {}
  LocalBuffer buffer;
};

// A get/put: completes once, when its last piece has come back from the provider (first error
// wins). Never earlier, not even when its peer is given up: until then the provider may still
// write into the caller's memory (the loss only sets the error; see fail_bulk).
struct BulkOp {
  Completion* done;
  size_t pieces_left;  // guarded by ops_mutex_, as is first_error
  Status first_error;
  std::shared_ptr<OfiPeer> peer;
};

// One fi_read/fi_write: contiguous on both sides, at most the chunk size.
struct RmaPiece : OpContext {
  RmaPiece() : OpContext(Kind::kRma) {}
  std::shared_ptr<BulkOp> op;
  bool read = true;
  std::byte* local = nullptr;
  void* local_desc = nullptr;
  size_t length = 0;
  uint64_t remote_address = 0;
  uint64_t key = 0;
};

class OfiMemoryRegion;

// Live regions, so that close() releases their registrations before the domain goes; shared
// with the regions, which may outlive the transport.
struct RegionTable {
  std::mutex mutex;
  std::unordered_set<OfiMemoryRegion*> regions;
  bool closed = false;
};

class OfiMemoryRegion final : public MemoryRegion {
 public:
  struct Segment {
    std::span<std::byte> bytes;
    fid_mr* mr = nullptr;
    void* desc = nullptr;
    uint64_t remote_address = 0;
    uint64_t key = 0;
  };
  // Registers every non-empty segment; `owned` is unmapped with the region.
  OfiMemoryRegion(OfiTransport& transport, std::span<const std::span<std::byte>> segments,
                  Access access, std::span<std::byte> owned);
  ~OfiMemoryRegion() override;
  size_t size() const override { return size_; }
  Access access() const override { return access_; }
  std::span<const std::span<std::byte>> segments() const override { return spans_; }
  std::vector<std::byte> descriptor() const override { return descriptor_; }

  const RegionTable* table() const { return table_.get(); }
  const std::vector<Segment>& registered() const { return registered_; }
  // Closes the registrations; caller holds the table's mutex.
  void release_registrations();

 private:
  std::shared_ptr<RegionTable> table_;
  std::vector<std::span<std::byte>> spans_;
  std::vector<Segment> registered_;  // non-empty segments, in order
  size_t size_ = 0;
  Access access_;
  std::vector<std::byte> descriptor_;
  std::span<std::byte> owned_;
};

class OfiTransport final : public Transport {
 public:
  OfiTransport(std::string_view address, const TransportOptions& options);
  ~OfiTransport() override;
  OfiTransport(const OfiTransport&) = delete;
  OfiTransport& operator=(const OfiTransport&) = delete;

  std::string_view scheme() const override { return scheme_; }
  const std::string& address() const override { return address_; }
  void set_handler(MessageHandler* handler) override { handler_ = handler; }
  PeerRef lookup(std::string_view address) override;
  using Transport::send;
  Status send(const PeerRef& to, std::span<const std::span<const std::byte>> parts,
              SendMode mode) override;
  void flush() override;
  std::unique_ptr<MemoryRegion> register_memory(std::span<const std::span<std::byte>> segments,
                                                Access access) override;
  std::unique_ptr<MemoryRegion> allocate_memory(size_t size, Access access) override;
  void get(const PeerRef& peer, std::span<const std::byte> remote, size_t remote_offset,
           MemoryRegion& local, size_t local_offset, size_t size, Completion* done) override;
  void put(const PeerRef& peer, std::span<const std::byte> remote, size_t remote_offset,
           MemoryRegion& local, size_t local_offset, size_t size, Completion* done) override;
  size_t progress(std::chrono::microseconds timeout) override;
  void interrupt() override;
  int wait_fd() const override { return epoll_fd_.get(); }
  bool prepare_wait() override;
  void close() override;

  // Registers `bytes` with the domain for `access` (FI_* flags); used by regions and buffers.
  // Throws dango::NetworkError naming the provider.
  void register_bytes(std::span<std::byte> bytes, uint64_t access, fid_mr** mr, void** desc,
                      uint64_t* key);
  const std::shared_ptr<RegionTable>& regions() const { return regions_; }
  bool virtual_addressing() const { return (mr_mode_ & FI_MR_VIRT_ADDR) != 0; }

  // Peers silent this long while watched get a liveness probe.
  static constexpr std::chrono::milliseconds kProbeAfter{500};
  // A peer is watched while it had a user message or bulk operation this recently.
  static constexpr std::chrono::seconds kWatchWindow{30};

 private:
  enum class BulkKind { kGet, kPut };

  // ofi_transport.cpp
  void open_endpoint(const fi_info& info);
  void post_receive_buffers();
  OfiPeer* as_ofi_peer(const PeerRef& peer) const;
  std::shared_ptr<OfiPeer> peer_for_name(const std::string& name, bool listens);
  TxBuffer* acquire_tx();
  void release_tx(TxBuffer* tx);
  TxBuffer* make_packet(const std::shared_ptr<OfiPeer>& peer, PacketType type,
                        uint64_t message_length, uint64_t offset);
  // Appends a message to the kMessages packet at the end of batched_ when it is the peer's and
  // has room, else to a new one; false when the message is too large for a batch.
  bool append_to_batch(const std::shared_ptr<OfiPeer>& peer,
                       std::span<const std::span<const std::byte>> parts, size_t total);
  // Copies a message into packets (`single` when one suffices, else `many`).
  std::span<TxBuffer*> split_into_packets(const std::shared_ptr<OfiPeer>& peer,
                                          std::span<const std::span<const std::byte>> parts,
                                          size_t total, std::span<TxBuffer*, 1> single,
                                          std::vector<TxBuffer*>& many);
  // ofi_post.cpp
  // Posts in order behind what is queued for the same peer; an immediate failure is returned
  // (kDisconnected).
  Status post_packets(std::span<TxBuffer* const> packets);
  // Posts `op` at once unless ops to `peer` wait before it; queues it on FI_EAGAIN. Returns 0 or
  // the provider's error. Caller holds post_mutex_.
  ssize_t post_or_queue(OpContext* op, const std::shared_ptr<OfiPeer>& peer);
  ssize_t post_now(OpContext* op);
  void drain_post_queue();
  void fail_post(OpContext* op, long rc);
  // Takes every operation queued for `peer` (all peers when null) out of the queues; the caller
  // releases or fails them with fail_dropped() once post_mutex_ is released.
  std::vector<OpContext*> drop_queued(OfiPeer* peer);
  void fail_dropped(std::span<OpContext* const> ops, const Status& status);

  // ofi_progress.cpp
  size_t poll_completions();
  size_t handle_error_completion();
  void wait_for_work(std::chrono::microseconds timeout);
  // The next nap of a CQ without wait object (see nap_): at most `limit`, and grows.
  std::chrono::microseconds next_nap(std::chrono::microseconds limit);
  // False while a CQ without wait object has get/put pieces in flight: their data moves only
  // while the CQ is polled.
  bool may_nap();
  // With posts queued: false when a retry is due now (do not sleep), else shortens `wait` to end
  // at the next retry.
  bool limit_by_retry(std::chrono::microseconds& wait) const;
  void linger();
  void teardown();

  // ofi_receive.cpp
  size_t handle_packet(std::span<const std::byte> packet);
  // Handles a packet of `peer` in its stream's turn (see wire.hpp), then those it was holding up.
  size_t handle_in_order(const std::shared_ptr<OfiPeer>& peer, const PacketHeader& header,
                         std::span<const std::byte> packet);
  size_t dispatch(const std::shared_ptr<OfiPeer>& peer, const PacketHeader& header,
                  std::span<const std::byte> payload);
  size_t take_message_part(const std::shared_ptr<OfiPeer>& from, const PacketHeader& header,
                           std::span<const std::byte> payload);
  size_t take_messages(const std::shared_ptr<OfiPeer>& from, std::span<const std::byte> payload);
  void repost(RxBuffer& rx);
  // Handles a completed receive (length 0 after a failed one) and reposts the buffer.
  size_t receive_completed(RxBuffer& rx, size_t length);
  void send_control(const std::shared_ptr<OfiPeer>& peer, PacketType type);
  void check_liveness(int64_t now);
  // The peer is unreachable: fails its bulk operations and reports it once per contact.
  void peer_failed(const std::shared_ptr<OfiPeer>& peer, const std::string& why);
  void report_deferred_failures();
  // Replaces the peer's address-vector entry, so that the provider drops its broken connection
  // state (rxm keeps retrying a dead connection, and holds what was queued on it, forever).
  void forget_connection(OfiPeer& peer);
  // Packets posted to `peer` from now on start a new stream (wire.hpp): the receiver stops
  // waiting for the ones before, which were dropped or went to a process that is gone.
  void restart_stream(OfiPeer& peer);

  // ofi_bulk.cpp
  void start_bulk(BulkKind kind, const PeerRef& peer, std::span<const std::byte> remote,
                  size_t remote_offset, MemoryRegion& local, size_t local_offset, size_t size,
                  Completion* done);
  void post_pieces(std::vector<std::unique_ptr<RmaPiece>> pieces, OfiPeer& peer, const char* what);
  // A piece is back from the provider (or was never given to it): completes its op with the
  // last one.
  size_t complete_piece(RmaPiece* piece, const Status& status);
  // Gives up the ops of `peer` (of all peers when null): each will complete with `status`, once
  // the provider has returned its pieces; asks the provider to cancel them (fi_cancel).
  void fail_bulk(const OfiPeer* peer, const Status& status);
  // After the endpoint is closed (the provider has dropped what it held): completes the rest.
  void complete_abandoned_pieces(const Status& status);

  TransportOptions options_;
  std::string scheme_;
  std::string provider_;
  std::string address_;
  MessageHandler* handler_ = nullptr;
  std::atomic<bool> closed_{false};

  // libfabric objects, closed in reverse order by teardown().
  fid_fabric* fabric_ = nullptr;
  fid_domain* domain_ = nullptr;
  fid_cq* cq_ = nullptr;
  fid_av* av_ = nullptr;
  fid_ep* ep_ = nullptr;
  uint64_t mr_mode_ = 0;
  std::atomic<uint64_t> next_key_{1};
  NameCodec codec_;
  std::string name_;  // our own normalized endpoint name
  uint64_t incarnation_ = 0;
  uint8_t sender_flags_ = 0;
  size_t packet_size_ = 0;  // bytes per libfabric message (header included)
  size_t inject_size_ = 0;
  size_t max_rma_ = 0;

  UniqueFd epoll_fd_;  // wake_fd_, nap_fd_ and the CQ's wait fd if any
  UniqueFd wake_fd_;   // eventfd written by interrupt()
  int cq_fd_ = -1;     // the CQ's own (-1 without wait object: idle progress naps instead)
  UniqueFd nap_fd_;    // timerfd ending a sleep on wait_fd() for a nap or a retry of a post
  // Length of the next nap: from kMinNap after activity, doubled by each nap that found
  // nothing, up to kMaxNap (kLongIdleMaxNap once idle for kLongIdle; see ofi_progress.cpp): a
  // message to an idle transport waits up to that long. Progress thread only.
  std::chrono::microseconds nap_{0};
  std::chrono::steady_clock::time_point last_activity_{};  // of progress(); progress thread only
  std::atomic<bool> waiting_{false};
  std::atomic<bool> interrupt_pending_{false};

  // progress() runs under it; close() from another thread waits for it, close() from inside a
  // callback leaves the teardown to the end of that progress().
  std::mutex progress_mutex_;
  std::atomic<std::thread::id> progress_thread_{};
  bool teardown_pending_ = false;

  std::mutex peers_mutex_;  // guards peers_, aliases_
  std::unordered_map<std::string, std::shared_ptr<OfiPeer>> peers_;  // by normalized name
  std::unordered_map<std::string, std::shared_ptr<OfiPeer>> aliases_;  // by address as given
  std::string last_sender_raw_;  // progress thread only: skips normalizing repeated senders
  std::shared_ptr<OfiPeer> last_sender_;
  int64_t next_liveness_check_ = 0;

  // The tx pool: every buffer in tx_all_, the idle ones also in tx_free_ (reused last-in first,
  // while still in cache), so that a message costs no allocation; the others are in use.
  std::mutex tx_mutex_;
  std::vector<std::unique_ptr<TxBuffer>> tx_all_;
  std::vector<TxBuffer*> tx_free_;
  std::vector<std::unique_ptr<RxBuffer>> rx_;  // posted receive buffers

  // Guards every post and the per-peer queues, so that packets to a peer leave in order. Each peer
  // has its own queue: one the provider cannot reach (rxm answers FI_EAGAIN for ever while it
  // reconnects to a dead process) or one flooded with traffic holds up nobody else.
  std::mutex post_mutex_;
  std::vector<std::shared_ptr<OfiPeer>> backlog_;  // peers with queued operations
  std::atomic<bool> has_queued_{false};
  // While has_queued_: when the earliest retry of a backlog peer is due (steady-clock ns).
  std::atomic<int64_t> next_retry_{0};
  std::mutex batched_mutex_;
  std::vector<TxBuffer*> batched_;
  std::atomic<bool> has_batched_{false};
  // Peers whose failure was found outside progress() (flush from another thread).
  std::mutex deferred_mutex_;
  std::vector<std::pair<std::shared_ptr<OfiPeer>, std::string>> deferred_failures_;
  std::atomic<bool> has_deferred_{false};

  std::shared_ptr<RegionTable> regions_;
  std::mutex ops_mutex_;  // guards pieces_ and the ops' counts and errors
  std::unordered_map<RmaPiece*, std::unique_ptr<RmaPiece>> pieces_;
};

}  // namespace dango::net::ofi
