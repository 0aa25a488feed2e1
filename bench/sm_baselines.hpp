#pragma once
// Raw same-node baselines for the sm transport, each across two real processes (the server side
// is this binary re-exec'd as a helper, see suite.hpp):
//   shm_pingpong   two processes spinning on shared cache lines: the floor of any same-node
//                  round trip (~0.13 us on the reference machine);
//   cma            one process_vm_readv of N bytes from another process: the floor of a
//                  single-copy bulk pull of ordinary memory;
//   sm_transport_pingpong  the sm transport's own message round trip, both sides polling
//                  progress(0): what the RPC layer adds its costs to.
// Every function throws std::runtime_error when the measurement cannot be made (helper failed,
// process_vm_readv refused by the kernel).

#include <cstddef>

#include "baselines.hpp"

namespace dango::bench {

// Round trips through two shared cache lines (one written by each process), both spinning;
// `iterations` timed after iterations/10 of warm-up. Latency in PingPongResult::latency_us.
PingPongResult shm_pingpong(std::size_t iterations);

// process_vm_readv of `size` bytes (one iovec each side) from a helper's touched buffer into a
// touched local buffer, in GiB/s: size / median time over >= 256 MiB or >= 20 repetitions
// (32 MiB / 5 when quick). `size` >= 1.
double cma_gib_per_s(std::size_t size, Effort effort = {});

// Round trips of `msg_size`-byte messages over the sm transport between this process and a
// helper that echoes them; both sides call progress(0) in a loop (no sleeping).
PingPongResult sm_transport_pingpong(std::size_t msg_size, std::size_t iterations);

}  // namespace dango::bench
