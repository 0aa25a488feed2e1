#pragma once
// Which transports a parameterised suite runs over, shared by the net and rpc test programs.
// The list comes from the transport registry at run time (never a hand-kept list): a transport
// plugged in later runs the same suites with no edit. A registered transport that cannot listen
// on this machine (ofi+verbs without InfiniBand) is left out, and the program says so once on
// stderr. What "can listen" means is the caller's probe: a bare transport for tests/net, an
// engine for tests/rpc.
//
// DANGO_TEST_TRANSPORTS=tcp,sm (a comma list) restricts the set, for debugging.

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dango/net/transport.hpp"

namespace dango::testing {

// A registered transport that the tests do not run over, and why.
struct LeftOutTransport {
  std::string scheme;
  std::string reason;
};

struct TransportSelection {
  std::vector<std::string> working;  // registry order
  std::vector<LeftOutTransport> left_out;
};

// Why the tests cannot run over a scheme, or nothing when they can.
using ListenProbe = std::function<std::optional<std::string>(const std::string& scheme)>;

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

// Which of the `registered` schemes the tests run over: those named in `only` (a comma list, the
// value of DANGO_TEST_TRANSPORTS; empty for all) for which `cannot_listen` finds nothing.
inline TransportSelection select_transports(const std::vector<std::string>& registered,
                                            std::string_view only,
                                            const ListenProbe& cannot_listen) {
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

// The registered transports restricted by DANGO_TEST_TRANSPORTS and by `cannot_listen`, reported
// on stderr. Call once per program (the callers keep the result in a function-local static).
inline TransportSelection select_registered_transports(const ListenProbe& cannot_listen) {
  const char* only = std::getenv("DANGO_TEST_TRANSPORTS");
  TransportSelection s =
      select_transports(net::registered_transports(), only ? only : "", cannot_listen);
  detail::report(s);
  return s;
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

}  // namespace dango::testing
