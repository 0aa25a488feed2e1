#pragma once
// Parsing, resolving and printing "tcp://host:port" addresses (IPv4, "[IPv6]", host names).

#include <sys/socket.h>

#include <string>
#include <string_view>

namespace dango::net::tcp {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
  int family() const { return storage.ss_family; }
};

struct HostPort {
  std::string host;  // without the brackets of an IPv6 literal
  std::string port;
};

// Splits the part after "tcp://" into host and port. Throws dango::NetworkError naming
// `address` when malformed (no port, empty host, port not a number).
HostPort parse_host_port(std::string_view location, std::string_view address);

// Resolves with getaddrinfo (first result wins). `passive` for a listening address. Throws
// dango::NetworkError naming `address` for an unknown host.
// `numeric_only` refuses host names (no DNS lookup), for addresses received from peers.
SocketAddress resolve(const HostPort& host_port, bool passive, std::string_view address,
                      bool numeric_only = false);

// "tcp://127.0.0.1:4242" or "tcp://[::1]:4242": the canonical form peers are keyed by.
std::string to_string(const SocketAddress& address);

}  // namespace dango::net::tcp
