#pragma once
// libfabric plumbing of the ofi transport: which provider a scheme names, choosing the fi_info
// that fits what the transport needs (reliable datagrams, messages, RMA), and the text form of
// endpoint names.
//
// Address format. Providers whose endpoint names are socket addresses (tcp, verbs over IP,
// sockets) print them as "ofi+tcp://127.0.0.1:4242" or "ofi+tcp://[::1]:4242"; host names are
// resolved by lookup(). Every other provider (shm, cxi, efa) prints the raw name in hex:
// "ofi+cxi://0x0a1b2c...". Either form parses back to the same raw name in another process.
// To listen, IP providers take "ofi+tcp://host:port" (port 0: any free port; address() tells
// which); the others take "ofi+shm://<anything>" and let the provider choose the name. The bare
// scheme ("ofi+tcp") is client-only: it still has an endpoint, whose name travels with every
// packet so that servers can answer, but address() is empty.

#include <rdma/fabric.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dango::net::ofi {

struct InfoDeleter {
  void operator()(fi_info* info) const { fi_freeinfo(info); }
};
using InfoPtr = std::unique_ptr<fi_info, InfoDeleter>;

// libfabric's text for a negative return code ("Connection refused").
std::string fi_error_text(long ret);

// The libfabric provider string for a scheme: "ofi+tcp" -> "tcp;ofi_rxm" (the tcp provider under
// the rxm utility, which turns its connections into reliable datagrams), "ofi+verbs" ->
// "verbs;ofi_rxm", "ofi+shm" -> "shm". Empty when `scheme` is not "ofi+<name>".
std::string provider_for_scheme(std::string_view scheme);

// The first fi_info of `provider` offering FI_EP_RDM with messages (ordered send after send) and
// RMA. `node`/`service` (may be null) choose the local address to listen on. Throws
// dango::NetworkError naming the provider and listing the providers libfabric does offer.
InfoPtr choose_info(std::string_view scheme, const std::string& provider, const char* node,
                    const char* service);

// Turns endpoint names to and from the location part of an address (see the format above).
class NameCodec {
 public:
  NameCodec(std::string scheme, uint32_t addr_format)
      : scheme_(std::move(scheme)), addr_format_(addr_format) {}

  bool is_socket_address() const;
  // The canonical raw name: socket addresses are rebuilt from family, address and port so that
  // a name received from a peer and one parsed from text compare equal byte for byte. Empty when
  // `name` is not a valid name of this format.
  std::string normalize(std::span<const std::byte> name) const;
  // "ofi+tcp://127.0.0.1:4242" for a normalized name.
  std::string to_address(std::string_view name) const;
  // Parses "ofi+tcp://host:port" (or the hex form) into a normalized name. Throws
  // dango::NetworkError naming `address` when it is malformed or the host unknown.
  std::string parse(std::string_view address) const;

 private:
  std::string scheme_;
  uint32_t addr_format_;
};

}  // namespace dango::net::ofi
