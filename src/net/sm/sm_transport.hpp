#pragma once
// The sm transport: processes on one node exchange messages through lock-free rings in shared
// memory (ring.hpp) and move bulk data with a single copy: process_vm_readv/writev between the
// two address spaces, or a plain memcpy when the remote memory is an arena (allocate_memory)
// that this process has mapped.
//
// Addresses: "sm://<name>" listens on <runtime dir>/<name>.sock (shared_memory.hpp);
// "sm://" listens under a name made unique per process ("p<pid>-<n>"); "sm" alone is
// client-only (it receives replies over the connections it makes).
//
// A connection: the connector creates a memfd segment holding two rings (one per direction),
// connects to the listener's SOCK_SEQPACKET socket and passes the segment in its HELLO; the
// acceptor maps it and answers WELCOME. The socket then carries only control packets
// (control.hpp): wake-ups for a receiver that announced it sleeps, arena descriptors, and the
// end of the connection when the other process exits or is killed (on_peer_lost). During the
// handshake each side reads a known word of the other with process_vm_readv (the HELLO/WELCOME
// says where); where the kernel refuses (ptrace scope, another user) it logs one warning and
// that connection's bulk transfers of ordinary memory go through the ring instead.
//
// Checks: a get/put is checked against the descriptor (range, rights) before it starts, and
// the descriptor must name the process the transfer goes to. process_vm_readv/writev run no
// code of the owner, so, as with Mercury's shared-memory plugin, a forged descriptor is trusted
// for ordinary memory; a mapped arena is checked against the owner's own size and rights, and
// the fallback through the ring against the owner's registration (key, range, rights).
//
// Environment (read when a transport is created, see SmOptions::from_environment):
//   DANGO_SM_DIR=<dir>          runtime directory (default /tmp/dango-sm-<uid>)
//   DANGO_SM_RING_SIZE=<bytes>  bytes of each ring of a connection (default 1 MiB)
//   DANGO_SM_BUSY_POLL_US=<us>  how long progress(timeout) polls before sleeping (default 0)
//   DANGO_SM_NO_CMA=1           never use process_vm_readv/writev: bulk data of ordinary memory
//                               is copied through the rings instead (arenas stay memcpy)
//
// Files: sm_transport.cpp (setup, peers, connections, handshake, close), sm_send.cpp (sending
// and the overflow queues), sm_progress.cpp (the progress loop, waiting, record dispatch),
// sm_bulk.cpp (regions, arenas, get/put), sm_fallback.cpp (bulk copies through the ring). The
// progress thread alone reads rings and sockets and closes connections; senders write rings
// from any thread.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "dango/net/transport.hpp"
#include "net/sm/control.hpp"
#include "net/sm/descriptor.hpp"
#include "net/sm/ring.hpp"
#include "net/sm/shared_memory.hpp"

namespace dango::net::sm {

// Tuning of the sm transport beyond TransportOptions.
struct SmOptions {
  // Bytes of each direction's ring of a connection: a power of two, 64 KiB to 1 GiB (default
  // 1 MiB). Messages over a quarter of it travel in fragments; a sender that finds the ring full
  // queues a copy that progress() writes as soon as the reader frees room (it wakes the sender).
  size_t ring_size = size_t{1} << 20;
  // How long progress(timeout > 0) keeps polling before it sleeps (default 0: the engine already
  // polls for a while after activity). Polling burns a core; sleeping costs a wake-up (~tens of
  // microseconds) on the next message.
  std::chrono::microseconds busy_poll{0};
  // Use process_vm_readv/writev for bulk data when the kernel allows it (default true).
  bool use_cma = true;
  // The options from the DANGO_SM_* environment variables (see the file comment); throws
  // dango::ConfigError naming the variable on a malformed value.
  static SmOptions from_environment();
};

struct Connection;
class SmTransport;

// A process-wide unique, increasing value (SmPeer::generation_).
uint64_t next_generation();

// A remote process. One per listening address (shared by all its users); a client-only process
// that connected to us gets one of its own, reachable only over that connection.
class SmPeer final : public Peer, public std::enable_shared_from_this<SmPeer> {
 public:
  SmPeer(const SmTransport* owner, std::string address, std::string socket_path);
  const std::string& address() const override { return address_; }

  const SmTransport* const owner_;  // identity only
  const std::string address_;
  const std::string socket_path_;  // where to (re)connect; empty for a client-only peer
  std::mutex mutex_;
  std::shared_ptr<Connection> connection_;  // guarded by mutex_: the one used for sending
  // A process-wide unique value that changes whenever connection_ does: senders cache the
  // connection per thread and check this instead of taking mutex_.
  std::atomic<uint64_t> generation_;
};

// A message or record that did not fit in the ring when sent, written by a later drain.
struct Outgoing {
  RecordType type = RecordType::kMessage;
  std::vector<std::byte> bytes;  // record payload; for kMessage the bytes not yet written
  size_t message_total = 0;      // kMessage: length of the whole message
  size_t message_written = 0;    // kMessage: bytes of it already in the ring
};

// A chunk of a fallback put being received: where its bytes go.
struct IncomingPut {
  std::span<const std::span<std::byte>> segments;
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t received = 0;
  Status status;
};

struct Connection {
  enum class State : uint8_t { kHandshake, kOpen, kClosed };

  Connection(Fd socket, bool connector, std::string description);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  Fd socket;  // closed only by the destructor, so a sender never wakes a reused descriptor
  const bool connector;
  std::atomic<State> state;
  std::string description;  // for messages: the peer's address or "sm client pid N"
  pid_t pid = 0;            // of the other process (SO_PEERCRED)
  Mapping segment;
  Ring out;  // we produce
  Ring in;   // we consume

  // Set by the progress thread before state becomes kOpen:
  uint64_t remote_instance = 0;
  bool cma = false;  // process_vm_readv/writev on the other process work

  // Messages that found the ring full, in order; once non-empty every send queues behind it.
  std::mutex out_mutex;
  std::deque<Outgoing> overflow;  // guarded by out_mutex
  std::atomic<bool> has_overflow{false};
  // A sender found the shared positions of `out` impossible and shut the socket down.
  std::atomic<bool> corrupt{false};

  // Progress thread only:
  std::shared_ptr<SmPeer> peer;  // set at creation (connector) or on HELLO (acceptor)
  std::vector<std::byte> reassembly;
  size_t reassembly_total = 0;
  struct MappedArena {
    Mapping mapping;
    Access access = Access::kReadOnly;  // as registered by the owner
  };
  std::unordered_map<uint64_t, MappedArena> arenas;  // the other process's arenas mapped here
  std::unordered_set<uint64_t> arenas_asked;
  std::unordered_map<uint64_t, IncomingPut> incoming_puts;  // fallback puts by chunk id
};

class SmMemoryRegion;

// Registered regions by key and arenas by id, shared with the regions so a region may outlive
// its transport.
struct RegionTable {
  std::mutex mutex;
  std::unordered_map<uint64_t, SmMemoryRegion*> regions;
  // Connections an arena's descriptor was sent to, told when the arena goes away.
  std::unordered_map<uint64_t, std::vector<std::weak_ptr<Connection>>> arena_holders;
  uint64_t next_key = 1;
};

class SmMemoryRegion final : public MemoryRegion {
 public:
  // Registers `segs`; with a valid `arena_fd` the region owns that memfd and its mapping.
  SmMemoryRegion(std::shared_ptr<RegionTable> table, uint64_t instance,
                 std::span<const std::span<std::byte>> segs, Access access, Fd arena_fd = {},
                 Mapping arena = {});
  ~SmMemoryRegion() override;
  size_t size() const override { return size_; }
  Access access() const override { return access_; }
  std::span<const std::span<std::byte>> segments() const override { return segments_; }
  std::vector<std::byte> descriptor() const override;

  const RegionTable* table() const { return table_.get(); }
  uint64_t key() const { return key_; }
  int arena_fd() const { return arena_fd_.get(); }

 private:
  std::shared_ptr<RegionTable> table_;
  uint64_t instance_;
  std::vector<std::span<std::byte>> segments_;
  size_t size_ = 0;
  Access access_;
  uint64_t key_ = 0;
  Fd arena_fd_;
  Mapping arena_;
};

class SmTransport final : public Transport {
 public:
  SmTransport(std::string_view address, const TransportOptions& options)
      : SmTransport(address, options, SmOptions::from_environment()) {}
  SmTransport(std::string_view address, const TransportOptions& options, SmOptions sm_options);
  ~SmTransport() override;
  SmTransport(const SmTransport&) = delete;
  SmTransport& operator=(const SmTransport&) = delete;

  std::string_view scheme() const override { return "sm"; }
  const std::string& address() const override { return address_; }
  void set_handler(MessageHandler* handler) override { handler_ = handler; }
  PeerRef lookup(std::string_view address) override;
  using Transport::send;
  Status send(const PeerRef& to, std::span<const std::span<const std::byte>> parts,
              SendMode mode) override;
  void flush() override {}  // a batched message is written to the ring at once
  std::unique_ptr<MemoryRegion> register_memory(std::span<const std::span<std::byte>> segments,
                                                Access access) override;
  std::unique_ptr<MemoryRegion> allocate_memory(size_t size, Access access) override;
  bool shares_allocated_memory() const override { return true; }
  void get(const PeerRef& peer, std::span<const std::byte> remote, size_t remote_offset,
           MemoryRegion& local, size_t local_offset, size_t size, Completion* done) override;
  void put(const PeerRef& peer, std::span<const std::byte> remote, size_t remote_offset,
           MemoryRegion& local, size_t local_offset, size_t size, Completion* done) override;
  size_t progress(std::chrono::microseconds timeout) override;
  void interrupt() override;
  int wait_fd() const override { return epoll_fd_.get(); }
  bool prepare_wait() override;
  void close() override;

 private:
  enum class BulkKind : uint8_t { kGet, kPut };
  // A get/put accepted by get()/put(), carried out by progress().
  struct BulkOp {
    BulkKind kind;
    std::shared_ptr<SmPeer> peer;
    RegionDescriptor remote;
    size_t remote_offset;
    std::span<const std::span<std::byte>> local;
    size_t local_offset;
    size_t size;
    Completion* done;
    size_t moved = 0;                        // bytes copied so far (single-copy paths)
    size_t chunks_left = 0;                  // fallback: chunks not yet answered
    Status first_error;                      // fallback: the first chunk error
    std::shared_ptr<Connection> connection;  // fallback: where its chunks went
  };
  // One chunk of a fallback get/put, by chunk id. Progress thread only.
  struct FallbackChunk {
    std::shared_ptr<BulkOp> op;
    size_t op_offset;
    size_t size;
    size_t received = 0;
  };

  // sm_transport.cpp
  void open_listener(std::string_view location);
  SmPeer* as_sm_peer(const PeerRef& peer) const;
  Status connection_for(SmPeer& peer, std::shared_ptr<Connection>& out);
  Status connect_to(SmPeer& peer, std::shared_ptr<Connection>& out);
  void attach(SmPeer& peer, const std::shared_ptr<Connection>& c);
  bool add_connection(const std::shared_ptr<Connection>& c);
  size_t accept_all();
  bool handle_hello(Connection& c, const ControlPacket& packet);
  bool handle_welcome(Connection& c, const ControlPacket& packet);
  bool probe_cma(const Connection& c, const HelloBody& hello);
  void close_connection(Connection& c, const Status& why, bool notify);
  std::vector<std::byte> hello_body(const std::string& address, uint64_t ring_key) const;

  // sm_send.cpp
  // Writes one record (kMessage may be fragmented) through the ring or the overflow queue.
  Status send_parts(Connection& c, RecordType type,
                    std::span<const std::span<const std::byte>> parts, size_t total);
  Status send_slow(Connection& c, RecordType type,
                   std::span<const std::span<const std::byte>> parts, size_t total);
  // Writes what fits of `entry` to the ring; true when all of it went. Caller holds out_mutex.
  bool write_outgoing(Connection& c, Outgoing& entry, bool& wake, bool& corrupt);
  size_t drain_overflow(Connection& c);
  // Before sleeping with messages queued for `c`: asks the peer for a wake-up when it frees
  // room. False when room turned up meanwhile (the caller must not sleep).
  bool sleep_until_room(Connection& c);
  void wake(Connection& c);
  void mark_corrupt(Connection& c);

  // sm_progress.cpp
  size_t poll_once();
  size_t poll_events(std::chrono::microseconds timeout);
  size_t read_ring(Connection& c);
  // Reads every record left in the ring of a connection whose peer closed it.
  size_t drain_ring(Connection& c);
  bool dispatch(Connection& c, const Ring::Record& record, size_t& handled);
  bool handle_fragment(Connection& c, const Ring::Record& record, size_t& handled);
  size_t handle_socket(Connection& c);
  bool handle_control(Connection& c, ControlPacket& packet);
  void adopt_new_connections();
  void disarm_all();

  // sm_bulk.cpp
  void start_bulk(BulkKind kind, const PeerRef& peer, std::span<const std::byte> remote,
                  size_t remote_offset, MemoryRegion& local, size_t local_offset, size_t size,
                  Completion* done);
  size_t run_bulk_ops();
  // One step of an op; true when it finished (completed).
  bool step(BulkOp& op, const std::shared_ptr<BulkOp>& self);
  Status copy_arena(BulkOp& op, const Mapping& arena, size_t length);
  Status copy_cma(BulkOp& op, pid_t pid, size_t length);
  // sm_fallback.cpp
  void start_fallback(const std::shared_ptr<BulkOp>& op, const std::shared_ptr<Connection>& c);
  bool serve_get_request(Connection& c, std::span<const std::byte> payload);
  bool accept_put_request(Connection& c, std::span<const std::byte> payload);
  bool receive_bulk_data(Connection& c, std::span<const std::byte> payload);
  bool receive_bulk_done(Connection& c, std::span<const std::byte> payload);
  void send_bulk_done(Connection& c, uint64_t chunk_id, const Status& status);
  Status check_region(uint64_t key, uint64_t offset, uint64_t size, bool write,
                      std::span<const std::span<std::byte>>* segments);
  void finish_chunk(uint64_t chunk_id, const Status& status);
  void fail_bulk(const Connection* c, const Status& status);
  void send_arena(Connection& c, uint64_t arena_id);
  void map_arena(Connection& c, ControlPacket& packet);

  TransportOptions options_;
  SmOptions sm_;
  std::string address_;
  std::string directory_;
  MessageHandler* handler_ = nullptr;
  std::atomic<bool> closed_{false};
  const uint64_t instance_;
  const uint64_t probe_word_;  // read by peers to check that process_vm_readv works

  Fd epoll_fd_;
  Fd wake_fd_;  // eventfd written by interrupt()
  Fd listen_fd_;
  std::unique_ptr<NameLock> name_lock_;
  std::atomic<bool> waiting_{false};
  std::atomic<bool> interrupt_pending_{false};

  std::mutex mutex_;  // guards peers_, connections_, fresh_
  std::unordered_map<std::string, std::weak_ptr<SmPeer>> peers_;
  std::unordered_map<const Connection*, std::shared_ptr<Connection>> connections_;
  std::vector<std::shared_ptr<Connection>> fresh_;  // made by senders, not yet polled
  std::atomic<bool> has_fresh_{false};

  // Progress thread only:
  std::vector<std::shared_ptr<Connection>> polled_;  // connections whose rings are read
  std::vector<std::shared_ptr<Connection>> graveyard_;
  bool armed_ = false;             // prepare_wait() announced a sleep on the rings
  unsigned passes_ = 0;
  std::vector<std::byte> control_buffer_;
  std::unordered_map<uint64_t, FallbackChunk> chunks_;
  std::vector<std::shared_ptr<BulkOp>> active_;
  std::vector<std::shared_ptr<BulkOp>> running_;  // scratch of run_bulk_ops

  std::shared_ptr<RegionTable> regions_;
  std::mutex ops_mutex_;  // guards submitted_
  std::vector<std::shared_ptr<BulkOp>> submitted_;
  std::atomic<bool> has_submitted_{false};
  uint64_t next_chunk_id_ = 1;  // progress thread only
  bool warned_no_cma_ = false;
};

}  // namespace dango::net::sm
