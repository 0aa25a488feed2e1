#pragma once
// Running an rpc test suite over every transport in the test binary on which an engine can
// listen (the selection itself, shared with tests/net, is common/transport_selection.hpp), and
// for suites about calls rather than transports, also over the in-process path ("self").
//
//   class RpcCall : public OverTransports {};
//   TEST_P(RpcCall, Works) { ServerAndClient sc{transport()}; ... }
//   DANGO_INSTANTIATE_OVER_TRANSPORTS_AND_SELF(RpcCall);
//
// DANGO_TEST_TRANSPORTS=tcp,sm (a comma list) restricts the set, for debugging.

#include <gtest/gtest.h>

#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
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

// The in-process path as a suite parameter: the "client" is the server engine itself, and its
// calls reach the handlers as function calls on the caller's ULT (Engine::self()). Calls must
// give the same results and the same errors as over a transport.
inline constexpr std::string_view kSelf = "self";

// The working transports, then "self" unless DANGO_TEST_TRANSPORTS names others only.
inline const std::vector<std::string>& working_transports_and_self() {
  static const std::vector<std::string> schemes = [] {
    std::vector<std::string> out = working_transports();
    const char* only = std::getenv("DANGO_TEST_TRANSPORTS");
    if (only == nullptr || *only == '\0' ||
        std::string_view(only).find(kSelf) != std::string_view::npos) {
      out.emplace_back(kSelf);
    }
    return out;
  }();
  return schemes;
}

// Fixture of a suite run once per working transport.
class OverTransports : public ::testing::TestWithParam<std::string> {
 protected:
  // The scheme under test ("tcp"): a client-only engine is Engine{transport()}.
  const std::string& transport() const { return GetParam(); }
  // Whether this instance runs over the in-process path (kSelf) rather than a transport.
  bool in_process() const { return transport() == kSelf; }
  // An address on this node that a server engine of this transport listens on (for the
  // in-process path: tcp's, the engine then also being the caller).
  std::string loopback() const {
    return net::loopback_address(in_process() ? std::string("tcp") : transport());
  }
};

}  // namespace dango::rpc::testing

// Instantiates the TEST_Ps of `suite` (a fixture deriving from OverTransports) once per working
// transport, as Transports/<suite>.<test>/<scheme>.
#define DANGO_INSTANTIATE_OVER_TRANSPORTS(suite)                                             \
  INSTANTIATE_TEST_SUITE_P(Transports, suite,                                                \
                           ::testing::ValuesIn(::dango::rpc::testing::working_transports()), \
                           ::dango::rpc::testing::TransportName{})

// The same, plus the in-process path, as Transports/<suite>.<test>/self.
#define DANGO_INSTANTIATE_OVER_TRANSPORTS_AND_SELF(suite)                                    \
  INSTANTIATE_TEST_SUITE_P(                                                                  \
      Transports, suite,                                                                     \
      ::testing::ValuesIn(::dango::rpc::testing::working_transports_and_self()),             \
      ::dango::rpc::testing::TransportName{})
