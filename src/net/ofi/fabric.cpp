// Provider choice and endpoint-name text of the ofi transport.

#include "net/ofi/fabric.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_errno.h>

#include <cstring>
#include <set>

#include "dango/common/error.hpp"
#include "net/host_port.hpp"

namespace dango::net::ofi {
namespace {

constexpr uint32_t kApiVersion = FI_VERSION(1, 17);
constexpr std::string_view kSchemePrefix = "ofi+";
constexpr size_t kMaxRawName = 255;  // a name travels with a one-byte length

// What the transport can honour when a provider requires it (see ofi_bulk.cpp). FI_MR_RAW (keys
// wider than 64 bits) and FI_MR_HMEM are not supported: such providers are not offered.
constexpr int kSupportedMrModes =
    FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY | FI_MR_ENDPOINT;

std::string joined(const std::set<std::string>& names) {
  std::string out;
  for (const auto& name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out.empty() ? "none" : out;
}

// Every provider libfabric offers on this machine, whatever its capabilities.
std::set<std::string> available_providers() {
  fi_info* all = nullptr;
  std::set<std::string> names;
  if (fi_getinfo(kApiVersion, nullptr, nullptr, 0, nullptr, &all) == 0) {
    for (fi_info* i = all; i != nullptr; i = i->next) names.insert(i->fabric_attr->prov_name);
    fi_freeinfo(all);
  }
  return names;
}

InfoPtr make_hints(const std::string& provider) {
  InfoPtr hints(fi_allocinfo());
  if (!hints) throw NetworkError("ofi transport: out of memory for fi_info hints");
  hints->caps = FI_MSG | FI_RMA | FI_SEND | FI_RECV | FI_READ | FI_WRITE | FI_REMOTE_READ |
                FI_REMOTE_WRITE;
  hints->mode = FI_CONTEXT | FI_CONTEXT2;
  hints->ep_attr->type = FI_EP_RDM;
  hints->domain_attr->mr_mode = kSupportedMrModes;
  hints->domain_attr->threading = FI_THREAD_SAFE;
  // Messages to one peer must arrive in the order they were sent (the fragments of a large
  // message rely on it too).
  hints->tx_attr->msg_order = FI_ORDER_SAS;
  hints->rx_attr->msg_order = FI_ORDER_SAS;
  hints->fabric_attr->prov_name = ::strdup(provider.c_str());
  return hints;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string fi_error_text(long ret) {
  return fi_strerror(static_cast<int>(ret < 0 ? -ret : ret));
}

std::string provider_for_scheme(std::string_view scheme) {
  if (!scheme.starts_with(kSchemePrefix) || scheme.size() == kSchemePrefix.size()) return {};
  std::string name(scheme.substr(kSchemePrefix.size()));
  // Connection-oriented providers get reliable datagrams from the rxm utility provider.
  if (name == "tcp" || name == "verbs") return name + ";ofi_rxm";
  return name;
}

InfoPtr choose_info(std::string_view scheme, const std::string& provider, const char* node,
                    const char* service) {
  InfoPtr hints = make_hints(provider);
  fi_info* found = nullptr;
  int rc = fi_getinfo(kApiVersion, node, service, node != nullptr ? FI_SOURCE : 0, hints.get(),
                      &found);
  if (rc == 0 && found != nullptr) return InfoPtr(found);
  auto offered = available_providers();
  std::string where = node != nullptr ? std::string(" on ") + node : std::string();
  if (rc == -FI_ENODATA && offered.count(provider) == 0) {
    throw NetworkError(std::string(scheme) + ": libfabric provider \"" + provider +
                       "\" is not available on this machine; providers offered: " +
                       joined(offered));
  }
  throw NetworkError(std::string(scheme) + ": libfabric provider \"" + provider + "\"" + where +
                     " offers no reliable-datagram endpoint with ordered messages and RMA (" +
                     fi_error_text(rc) + "); providers offered: " + joined(offered));
}

bool NameCodec::is_socket_address() const {
  return addr_format_ == FI_SOCKADDR || addr_format_ == FI_SOCKADDR_IN ||
         addr_format_ == FI_SOCKADDR_IN6;
}

std::string NameCodec::normalize(std::span<const std::byte> name) const {
  if (!is_socket_address()) {
    if (name.empty() || name.size() > kMaxRawName) return {};
    return std::string(reinterpret_cast<const char*>(name.data()), name.size());
  }
  sa_family_t family = 0;
  if (name.size() < sizeof family) return {};
  std::memcpy(&family, name.data(), sizeof family);
  if (family == AF_INET && name.size() >= sizeof(sockaddr_in)) {
    sockaddr_in in{};
    std::memcpy(&in, name.data(), sizeof in);
    sockaddr_in out{};
    out.sin_family = AF_INET;
    out.sin_port = in.sin_port;
    out.sin_addr = in.sin_addr;
    return std::string(reinterpret_cast<const char*>(&out), sizeof out);
  }
  if (family == AF_INET6 && name.size() >= sizeof(sockaddr_in6)) {
    sockaddr_in6 in{};
    std::memcpy(&in, name.data(), sizeof in);
    sockaddr_in6 out{};
    out.sin6_family = AF_INET6;
    out.sin6_port = in.sin6_port;
    out.sin6_addr = in.sin6_addr;
    out.sin6_scope_id = in.sin6_scope_id;
    return std::string(reinterpret_cast<const char*>(&out), sizeof out);
  }
  return {};
}

std::string NameCodec::to_address(std::string_view name) const {
  std::string prefix = scheme_ + "://";
  if (!is_socket_address()) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out = prefix + "0x";
    for (unsigned char c : name) {
      out += kDigits[c >> 4];
      out += kDigits[c & 15];
    }
    return out;
  }
  char host[INET6_ADDRSTRLEN] = {};
  if (name.size() == sizeof(sockaddr_in6)) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, name.data(), sizeof in6);
    ::inet_ntop(AF_INET6, &in6.sin6_addr, host, sizeof host);
    return prefix + "[" + host + "]:" + std::to_string(ntohs(in6.sin6_port));
  }
  sockaddr_in in{};
  std::memcpy(&in, name.data(), std::min(name.size(), sizeof in));
  ::inet_ntop(AF_INET, &in.sin_addr, host, sizeof host);
  return prefix + host + ":" + std::to_string(ntohs(in.sin_port));
}

std::string NameCodec::parse(std::string_view address) const {
  constexpr std::string_view kSeparator = "://";
  auto pos = address.find(kSeparator);
  std::string_view location =
      pos == std::string_view::npos ? std::string_view{} : address.substr(pos + kSeparator.size());
  if (pos == std::string_view::npos || address.substr(0, pos) != scheme_ || location.empty()) {
    throw NetworkError("the " + scheme_ + " transport cannot look up \"" + std::string(address) +
                       "\" (expected " + scheme_ + "://" +
                       (is_socket_address() ? "host:port)" : "0x<hex name>)"));
  }
  if (!is_socket_address()) {
    std::string raw;
    bool ok = location.starts_with("0x") && location.size() % 2 == 0 && location.size() > 2;
    for (size_t i = 2; ok && i < location.size(); i += 2) {
      int hi = hex_value(location[i]), lo = hex_value(location[i + 1]);
      ok = hi >= 0 && lo >= 0;
      raw += static_cast<char>(hi * 16 + lo);
    }
    if (!ok || raw.size() > kMaxRawName) {
      throw NetworkError("malformed ofi address \"" + std::string(address) +
                         "\": expected 0x followed by the hex digits of an endpoint name");
    }
    return raw;
  }
  HostPort hp = parse_host_port(location, address);
  addrinfo hints{};
  hints.ai_family = addr_format_ == FI_SOCKADDR_IN    ? AF_INET
                    : addr_format_ == FI_SOCKADDR_IN6 ? AF_INET6
                                                      : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* result = nullptr;
  int rc = ::getaddrinfo(hp.host.c_str(), hp.port.c_str(), &hints, &result);
  if (rc != 0 || result == nullptr) {
    throw NetworkError("cannot resolve ofi address \"" + std::string(address) +
                       "\": " + ::gai_strerror(rc));
  }
  std::string name = normalize(
      {reinterpret_cast<const std::byte*>(result->ai_addr), static_cast<size_t>(result->ai_addrlen)});
  ::freeaddrinfo(result);
  if (name.empty()) {
    throw NetworkError("cannot resolve ofi address \"" + std::string(address) +
                       "\": not an IP address");
  }
  return name;
}

}  // namespace dango::net::ofi
