#include "net/tcp/socket_address.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cstring>

#include "dango/common/error.hpp"

namespace dango::net::tcp {

SocketAddress resolve(const HostPort& host_port, bool passive, std::string_view address,
                      bool numeric_only) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags =
      AI_NUMERICSERV | (passive ? AI_PASSIVE : 0) | (numeric_only ? AI_NUMERICHOST : 0);
  addrinfo* result = nullptr;
  int rc = ::getaddrinfo(host_port.host.c_str(), host_port.port.c_str(), &hints, &result);
  if (rc != 0 || result == nullptr) {
    throw NetworkError("cannot resolve tcp address \"" + std::string(address) +
                       "\": " + ::gai_strerror(rc));
  }
  SocketAddress out;
  std::memcpy(&out.storage, result->ai_addr, result->ai_addrlen);
  out.length = result->ai_addrlen;
  ::freeaddrinfo(result);
  return out;
}

std::string to_string(const SocketAddress& address) {
  char host[INET6_ADDRSTRLEN] = {};
  unsigned port = 0;
  if (address.family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address.storage);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
    return "tcp://[" + std::string(host) + "]:" + std::to_string(port);
  }
  const auto* in4 = reinterpret_cast<const sockaddr_in*>(&address.storage);
  ::inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
  port = ntohs(in4->sin_port);
  return "tcp://" + std::string(host) + ":" + std::to_string(port);
}

}  // namespace dango::net::tcp
