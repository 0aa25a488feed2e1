#pragma once
// Runtime configurations shared by the thread-layer tests.

#include "dango/thread/options.hpp"

namespace dango::thread::testing {

// Pools "a" and "b", served by streams "A" and "B" (one OS thread each).
inline ThreadsOptions two_streams() {
  return {.pools = {{.name = "a"}, {.name = "b"}},
          .xstreams = {{.name = "A", .pools = {"a"}}, {.name = "B", .pools = {"b"}}}};
}

// A single pool "one" served by a single stream.
inline ThreadsOptions one_stream() {
  return {.pools = {{.name = "one"}}, .xstreams = {{.name = "solo", .pools = {"one"}}}};
}

}  // namespace dango::thread::testing
