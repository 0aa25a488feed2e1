#pragma once
// The transport interface: what every network plug-in (tcp, later sm and ofi+*) implements.
// Messages between processes plus one-sided get/put of registered memory. Nothing here knows
// about RPCs; the rpc layer builds on it. Transports are chosen by the address prefix through
// the registry at the bottom of this file.
//
// Threading contract: lookup(), send(), register_memory(), get(), put() and interrupt() may be
// called from any thread at any time. progress() is called by one thread at a time (the engine's
// progress loop); every callback (MessageHandler, Completion) runs inside progress(), or inline
// in the calling thread when an operation fails before it starts.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dango::net {

// Outcome of a transport operation; cheap when ok (no allocation).
struct Status {
  enum class Code : uint8_t {
    kOk = 0,
    kDisconnected,     // the connection to the peer was lost or could not be made
    kInvalidArgument,  // out-of-bounds offset/size, wrong access mode, unknown memory key
    kMessageTooLarge,  // a message over the configured maximum
    kShutdown,         // the transport was closed while the operation was pending
  };
  Code code = Code::kOk;
  std::string message;  // empty when ok; otherwise names the peer/key/size involved

  bool ok() const { return code == Code::kOk; }
  static Status Ok() { return {}; }
};

// A remote process as seen by this transport. One Peer per remote process, shared by every
// user; the connection behind it is made on first use and remade after the peer restarts.
class Peer {
 public:
  virtual ~Peer() = default;
  // The peer's listening address ("tcp://127.0.0.1:4242") when known; for a client-only peer
  // that connected to us, a description such as "tcp://127.0.0.1:53210 (client)".
  virtual const std::string& address() const = 0;
};
using PeerRef = std::shared_ptr<Peer>;

// Access rights a remote process has on exposed memory.
enum class Access : uint8_t { kReadOnly = 1, kWriteOnly = 2, kReadWrite = 3 };

// Memory registered with a transport for one-sided access. Several segments form one logical
// region; offsets used by get/put run over the concatenation of the segments. The memory must
// stay valid, and must not be freed, while the registration lives.
class MemoryRegion {
 public:
  virtual ~MemoryRegion() = default;
  virtual size_t size() const = 0;
  virtual Access access() const = 0;
  virtual std::span<const std::span<std::byte>> segments() const = 0;
  // Transport-specific bytes that let a peer address this region (a key for tcp; addresses and
  // remote keys for RDMA transports). Sent inside RPC arguments by the rpc layer.
  virtual std::vector<std::byte> descriptor() const = 0;
  // The transport's own registration behind this region: itself, unless it wraps one (as the
  // default Transport::allocate_memory does). A transport looks here for its region type.
  virtual MemoryRegion& registration() { return *this; }
};

// When a message leaves: at once, or with the next flush (see Transport::send).
enum class SendMode : uint8_t { kNow, kBatched };

// Called with the outcome of an asynchronous get/put. The object must outlive the operation;
// complete() is called exactly once.
class Completion {
 public:
  virtual ~Completion() = default;
  virtual void complete(Status status) = 0;
};

// Receives what arrives from peers. The message bytes are valid only during the call.
class MessageHandler {
 public:
  virtual ~MessageHandler() = default;
  virtual void on_message(const PeerRef& from, std::span<const std::byte> message) = 0;
  // The connection to `peer` was lost; messages sent to it that got no answer are gone.
  virtual void on_peer_lost(const PeerRef& peer) = 0;
};

struct TransportOptions {
  // Listen for incoming connections (server mode). Without it the transport only connects out.
  bool listen = true;
  // Largest message accepted or sent, in bytes (default 64 MiB). A peer announcing a larger
  // frame is treated as garbage and disconnected.
  size_t max_message_size = size_t{64} << 20;
  // get/put larger than this are split into chunks of this size, all in flight at once, so that
  // other messages interleave with a long transfer. Each chunk costs a request and a reply
  // frame; measured over loopback tcp, a 16 MiB pull reaches 0.82x the raw stream in 4 MiB
  // chunks and 0.90-0.95x in one, while a 16 MiB chunk delays other messages on that connection
  // by ~2.5 ms at most (default 16 MiB).
  size_t bulk_chunk_size = size_t{16} << 20;
  // How long a connection attempt may take before sends to that peer fail (default 5 s).
  std::chrono::milliseconds connect_timeout{5000};
};

class Transport {
 public:
  virtual ~Transport() = default;

  // The scheme handled by this transport ("tcp").
  virtual std::string_view scheme() const = 0;
  // The address peers use to reach this process ("tcp://127.0.0.1:40123"); with port 0 in the
  // address given at creation, the port actually bound. Empty when not listening.
  virtual const std::string& address() const = 0;

  // Sets the receiver of incoming messages; called once before the first progress().
  virtual void set_handler(MessageHandler* handler) = 0;

  // Resolves an address string to a peer; does not connect yet. Throws dango::NetworkError on a
  // malformed address or an unknown host.
  virtual PeerRef lookup(std::string_view address) = 0;

  // Sends one message made of the concatenation of `parts`. The bytes may be reused as soon as
  // send returns (the transport copies what it cannot write at once). Messages to one peer
  // arrive in order. An error is returned when the peer cannot be reached.
  Status send(const PeerRef& to, std::span<const std::span<const std::byte>> parts) {
    return send(to, parts, SendMode::kNow);
  }
  // kBatched queues the message (a copy) to leave with the next flush() — progress() starts
  // with one — in one write with the other messages batched to the same peer: for many small
  // messages sent by code that runs between two progress passes (replies of handlers).
  virtual Status send(const PeerRef& to, std::span<const std::span<const std::byte>> parts,
                      SendMode mode) = 0;
  // Writes every batched message. Thread-safe.
  virtual void flush() = 0;

  // Registers memory for one-sided access by peers (and as the local side of get/put).
  virtual std::unique_ptr<MemoryRegion> register_memory(std::span<const std::span<std::byte>> segments,
                                                        Access access) = 0;

  // Allocates `size` bytes of zeroed memory owned by the returned region (freed with it) and
  // registers it. A transport whose peers can map memory (sm: a shared segment that a process
  // on the same node maps once) overrides this so that get/put on such memory is a plain
  // memcpy; the default gives ordinary anonymous pages registered with register_memory().
  virtual std::unique_ptr<MemoryRegion> allocate_memory(size_t size, Access access);
  // True when allocate_memory() is overridden as above: an engine with several transports then
  // allocates its exposed memory from this one.
  virtual bool shares_allocated_memory() const { return false; }

  // One-sided read: copies `size` bytes at `remote_offset` of the remote region described by
  // `remote` (owned by `peer`) into `local` at `local_offset`. The remote process's user code
  // does not run. `done` is completed from progress() (or inline on immediate failure).
  virtual void get(const PeerRef& peer, std::span<const std::byte> remote, size_t remote_offset,
                   MemoryRegion& local, size_t local_offset, size_t size, Completion* done) = 0;
  // One-sided write: the mirror of get, from `local` into the remote region.
  virtual void put(const PeerRef& peer, std::span<const std::byte> remote, size_t remote_offset,
                   MemoryRegion& local, size_t local_offset, size_t size, Completion* done) = 0;

  // Makes progress: accepts connections, reads and dispatches messages, moves bulk data, runs
  // completions. Waits up to `timeout` when nothing is ready (0 = just poll). Returns how many
  // events it handled.
  virtual size_t progress(std::chrono::microseconds timeout) = 0;
  // Makes a progress() that is waiting return at once. Thread-safe; cheap when nobody waits.
  virtual void interrupt() = 0;

  // For a caller that sleeps on several transports at once (an engine listening on tcp and sm):
  // a descriptor that becomes readable when progress() has something to do, or -1 when the
  // transport has none (the caller then naps in short progress(timeout) calls instead).
  virtual int wait_fd() const { return -1; }
  // Arms wait_fd() before the caller sleeps on it (a transport that only signals a sleeping
  // receiver announces it here). Returns false when work is already pending: call progress(0)
  // instead of sleeping. After waking, the caller calls progress(0).
  virtual bool prepare_wait() { return true; }

  // Closes every connection and the listening socket; pending operations complete with
  // kShutdown. Idempotent.
  virtual void close() = 0;
};

// --- Registry: transports are plug-ins chosen by the address scheme ------------------------

using TransportFactory =
    std::function<std::unique_ptr<Transport>(std::string_view address, const TransportOptions&)>;

// Creates the transport for `address` ("tcp://127.0.0.1:0", or just "tcp" for a client-only
// transport). Throws dango::NetworkError naming the scheme when no transport handles it.
std::unique_ptr<Transport> make_transport(std::string_view address,
                                          const TransportOptions& options = {});

// The registered schemes, in order, for diagnostics and parameterised tests.
std::vector<std::string> registered_transports();

// Registers a factory for a scheme; used through DANGO_REGISTER_TRANSPORT at static-init time.
// `loopback` is an address that listens on this node only, for tests and benchmarks (default
// "<scheme>://127.0.0.1:0").
bool register_transport(std::string scheme, TransportFactory factory, std::string loopback = "");

// The registered loopback address of `scheme` ("tcp://127.0.0.1:0", "sm://"). Throws
// NetworkError for an unknown scheme.
std::string loopback_address(std::string_view scheme);

// Splits "scheme://rest" into its parts; "tcp" alone gives {"tcp", ""}.
std::pair<std::string_view, std::string_view> split_address(std::string_view address);

}  // namespace dango::net

// Registers transport class `Type`, constructible as Type(address, options), for `scheme`;
// DANGO_REGISTER_TRANSPORT_AT also names its loopback address (see register_transport).
#define DANGO_REGISTER_TRANSPORT_AT(scheme, Type, loopback)                                  \
  static const bool dango_transport_registered_##Type = ::dango::net::register_transport( \
      #scheme,                                                                           \
      [](std::string_view address, const ::dango::net::TransportOptions& options) {      \
        return std::unique_ptr<::dango::net::Transport>(std::make_unique<Type>(address, options)); \
      },                                                                                 \
      loopback)
#define DANGO_REGISTER_TRANSPORT(scheme, Type) DANGO_REGISTER_TRANSPORT_AT(scheme, Type, "")
