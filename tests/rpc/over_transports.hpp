#pragma once
// Running a test suite over every transport in the test binary. The list comes from the
// transport registry at run time (never a hand-kept list): a transport plugged in later (sm,
// ofi+tcp) runs the same suites with no edit. A registered transport that cannot listen on this
// machine (ofi+verbs without InfiniBand) is left out, and the program says so once on stderr.
//
//   class RpcCall : public OverTransports {};
//   TEST_P(RpcCall, Works) { ServerAndClient sc{transport()}; ... }
//   DANGO_INSTANTIATE_OVER_TRANSPORTS(RpcCall);
//
// DANGO_TEST_TRANSPORTS=tcp,sm (a comma list) restricts the set, for debugging.

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dango/dango.hpp"

namespace dango::rpc::testing {

// A registered transport that the tests do not run over, and why.
struct LeftOutTransport {
  std::string scheme;
  std::string reason;
};

struct TransportSelection {
  std::vector<std::string> working;  // registry order
  std::vector<LeftOutTransport> left_out;
};

namespace detail {

inline std::vector<std::string> split_commas(std::string_view list) {
  std::vector<std::string> out;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front()))) {
      item.remove_prefix(1);
    }
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) {
      item.remove_suffix(1);
    }
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace detail

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

// Which of the `registered` schemes the tests run over: those named in `only` (a comma list, the
// value of DANGO_TEST_TRANSPORTS; empty for all) for which `cannot_listen` finds nothing.
inline TransportSelection select_transports(
    const std::vector<std::string>& registered, std::string_view only,
    const std::function<std::optional<std::string>(const std::string&)>& cannot_listen) {
  TransportSelection selection;
  std::vector<std::string> wanted = registered;
  if (!only.empty()) {
    wanted = detail::split_commas(only);
    for (const std::string& name : wanted) {
      if (std::find(registered.begin(), registered.end(), name) == registered.end()) {
        selection.left_out.push_back({name, "named in DANGO_TEST_TRANSPORTS but not registered"});
      }
    }
  }
  for (const std::string& scheme : registered) {
    if (std::find(wanted.begin(), wanted.end(), scheme) == wanted.end()) {
      selection.left_out.push_back({scheme, "not named in DANGO_TEST_TRANSPORTS"});
    } else if (auto why = cannot_listen(scheme)) {
      selection.left_out.push_back({scheme, std::move(*why)});
    } else {
      selection.working.push_back(scheme);
    }
  }
  return selection;
}

namespace detail {

inline void report(const TransportSelection& selection) {
  std::string line = "[transports] tests run over:";
  for (const auto& scheme : selection.working) line += " " + scheme;
  if (selection.working.empty()) line += " none";
  std::fprintf(stderr, "%s\n", line.c_str());
  for (const auto& left : selection.left_out) {
    std::fprintf(stderr, "[transports] left out %s: %s\n", left.scheme.c_str(),
                 left.reason.c_str());
  }
  std::fflush(stderr);
}

}  // namespace detail

// The transports the tests run over, worked out (and reported on stderr) once per program: the
// registered ones, restricted by DANGO_TEST_TRANSPORTS, on whose loopback address an engine can
// listen. Called when gtest registers the parameterised tests (after static initialisation).
inline const TransportSelection& transport_selection() {
  static const TransportSelection selection = [] {
    const char* only = std::getenv("DANGO_TEST_TRANSPORTS");
    TransportSelection s =
        select_transports(net::registered_transports(), only ? only : "", cannot_listen_on);
    detail::report(s);
    return s;
  }();
  return selection;
}
inline const std::vector<std::string>& working_transports() {
  return transport_selection().working;
}

// A scheme as a gtest parameter name: "ofi+tcp" -> "ofi_tcp".
inline std::string test_name_of(std::string_view scheme) {
  std::string name(scheme);
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

// Names each instantiation after its transport.
struct TransportName {
  std::string operator()(const ::testing::TestParamInfo<std::string>& info) const {
    return test_name_of(info.param);
  }
};

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
