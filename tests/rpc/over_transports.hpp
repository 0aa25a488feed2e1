#pragma once
// Running an rpc test suite over every transport in the test binary on which an engine can
// listen (the selection itself, shared with tests/net, is common/transport_selection.hpp).
//
//   class RpcCall : public OverTransports {};
//   TEST_P(RpcCall, Works) { ServerAndClient sc{transport()}; ... }
//   DANGO_INSTANTIATE_OVER_TRANSPORTS(RpcCall);
//
// DANGO_TEST_TRANSPORTS=tcp,sm (a comma list) restricts the set, for debugging.

#include <gtest/gtest.h>

#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "common/transport_selection.hpp"
#include "dango/dango.hpp"

namespace dango::rpc::testing {

using dango::testing::LeftOutTransport;
using dango::testing::select_transports;
using dango::testing::test_name_of;
using dango::testing::TransportName;
using dango::testing::TransportSelection;

// Why an engine cannot listen on `scheme`'s loopback address, or nothing when it can.
inline std::optional<std::string> cannot_listen_on(const std::string& scheme) {
  std::string address = "its loopback address";
  try {
    address = net::loopback_address(scheme);
    Engine probe{EngineOptions{.address = address}};
    if (probe.address().rfind(scheme + "://", 0) != 0) {
      return "an engine on " + address + " reports the address \"" + probe.address() + "\"";
    }
    return std::nullopt;
  } catch (const std::exception& e) {
    return "cannot listen on " + address + ": " + e.what();
  }
}

// The transports the tests run over, worked out (and reported on stderr) once per program: the
// registered ones, restricted by DANGO_TEST_TRANSPORTS, on whose loopback address an engine can
// listen. Called when gtest registers the parameterised tests (after static initialisation).
inline const TransportSelection& transport_selection() {
  static const TransportSelection selection =
      dango::testing::select_registered_transports(cannot_listen_on);
  return selection;
}
inline const std::vector<std::string>& working_transports() {
  return transport_selection().working;
}

// Fixture of a suite run once per working transport.
class OverTransports : public ::testing::TestWithParam<std::string> {
 protected:
  // The scheme under test ("tcp"): a client-only engine is Engine{transport()}.
  const std::string& transport() const { return GetParam(); }
  // An address on this node that a server engine of this transport listens on.
  std::string loopback() const { return net::loopback_address(transport()); }
};

}  // namespace dango::rpc::testing

// Instantiates the TEST_Ps of `suite` (a fixture deriving from OverTransports) once per working
// transport, as Transports/<suite>.<test>/<scheme>.
#define DANGO_INSTANTIATE_OVER_TRANSPORTS(suite)                                             \
  INSTANTIATE_TEST_SUITE_P(Transports, suite,                                                \
                           ::testing::ValuesIn(::dango::rpc::testing::working_transports()), \
                           ::dango::rpc::testing::TransportName{})
