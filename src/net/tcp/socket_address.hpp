#pragma once
// Resolving and printing "tcp://host:port" addresses (IPv4, "[IPv6]", host names); the host and
// port come from parse_host_port (net/host_port.hpp).

#include <sys/socket.h>

#include <string>
#include <string_view>

#include "net/host_port.hpp"

namespace dango::net::tcp {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
  int family() const { return storage.ss_family; }
};

// Resolves with getaddrinfo (first result wins). `passive` for a listening address. Throws
// dango::NetworkError naming `address` for an unknown host.
// `numeric_only` refuses host names (no DNS lookup), for addresses received from peers.
SocketAddress resolve(const HostPort& host_port, bool passive, std::string_view address,
                      bool numeric_only = false);

// "tcp://127.0.0.1:4242" or "tcp://[::1]:4242": the canonical form peers are keyed by.
std::string to_string(const SocketAddress& address);

}  // namespace dango::net::tcp
