#pragma once
// The location part of the IP transports' addresses ("tcp://host:port", "ofi+tcp://[v6]:port"):
// one parser, so that every such transport accepts and refuses the same forms.

#include <string>
#include <string_view>

namespace dango::net {

struct HostPort {
  std::string host;  // without the brackets of an IPv6 literal
  std::string port;
};

// Splits `location` (what follows "<scheme>://" in `address`) into host and port: "host:port" or
// "[v6]:port". Throws dango::NetworkError naming `address` and its scheme when malformed (no
// port, empty host, port not a number below 65536, an IPv6 literal without brackets).
HostPort parse_host_port(std::string_view location, std::string_view address);

}  // namespace dango::net
