#pragma once
// The transport-level suites run once per registered transport that can listen here (tcp, sm,
// ofi+tcp, and whatever is plugged in later), as the rpc suites do (common/transport_selection.hpp;
// DANGO_TEST_TRANSPORTS restricts the set). What only one transport does (tcp's wire format,
// sm's rings and fallback, ofi's providers) stays in that transport's own test files.
//
//   class NetMessages : public OverNetTransports {};
//   TEST_P(NetMessages, Work) { auto s = server(); auto c = client(); ... }
//   DANGO_INSTANTIATE_OVER_NET_TRANSPORTS(NetMessages);

#include <gtest/gtest.h>

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "common/transport_selection.hpp"
#include "dango/net/transport.hpp"

namespace dango::net::testing {

// Why a transport cannot listen on `scheme`'s loopback address, or nothing when it can. A
// transport answering with another scheme's address (fault+tcp is tcp underneath) is left out.
inline std::optional<std::string> transport_cannot_listen_on(const std::string& scheme) {
  std::string address = "its loopback address";
  try {
    address = loopback_address(scheme);
    auto probe = make_transport(address);
    if (probe->address().rfind(scheme + "://", 0) != 0) {
      return "a transport on " + address + " reports the address \"" + probe->address() + "\"";
    }
    return std::nullopt;
  } catch (const std::exception& e) {
    return "cannot listen on " + address + ": " + e.what();
  }
}

// The transports the net suites run over, worked out (and reported on stderr) once per program;
// none in a child process (child_process.hpp), which runs one plain test and needs no probing.
inline const std::vector<std::string>& working_net_transports() {
  static const dango::testing::TransportSelection selection =
      child_role() ? dango::testing::TransportSelection{}
                   : dango::testing::select_registered_transports(transport_cannot_listen_on);
  return selection.working;
}

// Fixture of a suite run once per working transport.
class OverNetTransports : public ::testing::TestWithParam<std::string> {
 protected:
  // The scheme under test ("tcp").
  const std::string& scheme() const { return GetParam(); }
  // An address on this node that a server of this transport listens on ("tcp://127.0.0.1:0").
  std::string loopback() const { return loopback_address(scheme()); }
  // A listening transport on the loopback address.
  std::unique_ptr<Transport> server(const TransportOptions& options = {}) const {
    return make_transport(loopback(), options);
  }
  // A client-only transport (the bare scheme: it connects out, never listens).
  std::unique_ptr<Transport> client(const TransportOptions& options = {}) const {
    return make_transport(scheme(), options);
  }
};

}  // namespace dango::net::testing

// Instantiates the TEST_Ps of `suite` (deriving from OverNetTransports) once per working
// transport, as Transports/<suite>.<test>/<scheme>.
#define DANGO_INSTANTIATE_OVER_NET_TRANSPORTS(suite)                                             \
  INSTANTIATE_TEST_SUITE_P(Transports, suite,                                                    \
                           ::testing::ValuesIn(::dango::net::testing::working_net_transports()), \
                           ::dango::testing::TransportName{})
