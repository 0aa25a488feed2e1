#include "net/host_port.hpp"

#include <charconv>

#include "dango/common/error.hpp"
#include "dango/net/transport.hpp"

namespace dango::net {

HostPort parse_host_port(std::string_view location, std::string_view address) {
  const std::string scheme(split_address(address).first);
  auto fail = [&](std::string_view why) {
    throw NetworkError("malformed " + scheme + " address \"" + std::string(address) + "\": " +
                       std::string(why) + " (expected " + scheme + "://host:port or " + scheme +
                       "://[v6]:port)");
  };
  HostPort out;
  std::string_view rest;
  if (!location.empty() && location.front() == '[') {
    auto close = location.find(']');
    if (close == std::string_view::npos) fail("missing ']'");
    out.host = std::string(location.substr(1, close - 1));
    rest = location.substr(close + 1);
    if (rest.empty() || rest.front() != ':') fail("missing port");
    rest.remove_prefix(1);
  } else {
    auto colon = location.rfind(':');
    if (colon == std::string_view::npos) fail("missing port");
    out.host = std::string(location.substr(0, colon));
    rest = location.substr(colon + 1);
    if (out.host.find(':') != std::string::npos) fail("IPv6 addresses need brackets");
  }
  if (out.host.empty()) fail("empty host");
  unsigned port = 0;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), port);
  if (rest.empty() || ec != std::errc{} || end != rest.data() + rest.size() || port > 65535) {
    fail("bad port");
  }
  out.port = std::string(rest);
  return out;
}

}  // namespace dango::net
