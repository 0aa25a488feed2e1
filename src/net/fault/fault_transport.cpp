// The fault-injection transport (see dango/net/fault.hpp): a decorator over the transport of
// the inner scheme that drops messages in both directions while the switch is on.

#include <atomic>
#include <memory>
#include <string>

#include "dango/common/error.hpp"
#include "dango/net/fault.hpp"
#include "dango/net/transport.hpp"

namespace dango::net {
namespace fault {
namespace {
std::atomic<bool> g_dropping{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set_dropping must be async-signal-safe");
}  // namespace

void set_dropping(bool on) noexcept { g_dropping.store(on, std::memory_order_relaxed); }
bool dropping() noexcept { return g_dropping.load(std::memory_order_relaxed); }
}  // namespace fault

namespace {

constexpr std::string_view kPrefix = "fault+";

class FaultTransport final : public Transport, private MessageHandler {
 public:
  FaultTransport(std::string_view address, const TransportOptions& options)
      : inner_(make_transport(inner_address(address), options)) {}

  std::string_view scheme() const override { return inner_->scheme(); }
  const std::string& address() const override { return inner_->address(); }
  void set_handler(MessageHandler* handler) override {
    handler_ = handler;
    inner_->set_handler(this);
  }
  PeerRef lookup(std::string_view address) override {
    return inner_->lookup(address.starts_with(kPrefix) ? address.substr(kPrefix.size()) : address);
  }
  using Transport::send;
  Status send(const PeerRef& to, std::span<const std::span<const std::byte>> parts,
              SendMode mode) override {
    if (fault::dropping()) return Status::Ok();
    return inner_->send(to, parts, mode);
  }
  void flush() override { inner_->flush(); }
  std::unique_ptr<MemoryRegion> register_memory(std::span<const std::span<std::byte>> segments,
                                                Access access) override {
    return inner_->register_memory(segments, access);
  }
  std::unique_ptr<MemoryRegion> allocate_memory(size_t size, Access access) override {
    return inner_->allocate_memory(size, access);
  }
  void get(const PeerRef& peer, std::span<const std::byte> remote, size_t remote_offset,
           MemoryRegion& local, size_t local_offset, size_t size, Completion* done) override {
    inner_->get(peer, remote, remote_offset, local, local_offset, size, done);
  }
  void put(const PeerRef& peer, std::span<const std::byte> remote, size_t remote_offset,
           MemoryRegion& local, size_t local_offset, size_t size, Completion* done) override {
    inner_->put(peer, remote, remote_offset, local, local_offset, size, done);
  }
  size_t progress(std::chrono::microseconds timeout) override { return inner_->progress(timeout); }
  void interrupt() override { inner_->interrupt(); }
  int wait_fd() const override { return inner_->wait_fd(); }
  bool prepare_wait() override { return inner_->prepare_wait(); }
  void close() override { inner_->close(); }

 private:
  static std::string inner_address(std::string_view address) {
    if (!address.starts_with(kPrefix) || address.size() == kPrefix.size()) {
      throw NetworkError("fault transport: \"" + std::string(address) +
                         "\" is not of the form fault+<scheme>://...");
    }
    return std::string(address.substr(kPrefix.size()));
  }
  void on_message(const PeerRef& from, std::span<const std::byte> message) override {
    if (fault::dropping()) return;
    handler_->on_message(from, message);
  }
  void on_peer_lost(const PeerRef& peer) override { handler_->on_peer_lost(peer); }

  std::unique_ptr<Transport> inner_;
  MessageHandler* handler_ = nullptr;
};

}  // namespace

// Registered by hand: DANGO_REGISTER_TRANSPORT stringizes its scheme, and "fault+tcp" is not
// one preprocessor token.
[[maybe_unused]] const bool fault_tcp_registered = register_transport(
    "fault+tcp", [](std::string_view address, const TransportOptions& options) {
      return std::unique_ptr<Transport>(std::make_unique<FaultTransport>(address, options));
    });

}  // namespace dango::net
