#pragma once
// Raw baselines that every suite compares against, as reusable functions: what the machine does
// with no Dango in the way. Networked baselines cross two real processes: the server side is
// this binary re-exec'd as the helper "tcp_baseline" (see suite.hpp), the client side runs in
// the calling thread. By convention a Record's `baseline` is the name of the function measured
// ("tcp_pingpong_poll", "tcp_stream", "memcpy_bandwidth", "boost_fiber_create_join_ns", ...).
//
// Every function throws std::runtime_error when the measurement cannot be made (socket errors,
// helper failed to start or exited with an error).

#include <cstddef>
#include <cstdint>
#include <vector>

#include "suite.hpp"

namespace dango::bench {

// How hard a baseline works for a stable number; pass {.quick = options.quick}.
struct Effort {
  bool quick = false;  // fewer repetitions: a run of well under a second per call
};

// How both sides of a TCP baseline wait for data.
enum class IoMode : std::uint8_t {
  kBlocking,  // plain blocking send/recv: the kernel wakes the reader (wake-up latency included)
  kPolling,   // busy-poll with recv/send(MSG_DONTWAIT): no wake-up, one core burnt per side
};

// The message size used for the latency baselines: about an RPC header plus small arguments.
constexpr std::size_t kPingPongMessageSize = 64;

// Per-iteration round trips of a ping-pong.
struct PingPongResult {
  std::vector<double> latency_us;  // one sample per timed round trip (warm-up excluded)
  double round_trips_per_s = 0;    // timed iterations / wall time of the timed loop
  double median_us() const;
  double p99_us() const;
};

// The untimed warm-up round trips before `iterations` timed ones: a tenth, at least 10.
inline std::size_t pingpong_warmup(std::size_t iterations) {
  return iterations / 10 > 10 ? iterations / 10 : 10;
}

// Runs `warmup` untimed calls of `round_trip`, then times `iterations` of them one by one.
template <class RoundTrip>
PingPongResult time_round_trips(std::size_t warmup, std::size_t iterations,
                                RoundTrip&& round_trip) {
  for (std::size_t i = 0; i < warmup; ++i) round_trip();
  PingPongResult result;
  result.latency_us.reserve(iterations);
  const Stopwatch total;
  for (std::size_t i = 0; i < iterations; ++i) {
    const std::int64_t start = now_ns();
    round_trip();
    result.latency_us.push_back(static_cast<double>(now_ns() - start) / 1e3);
  }
  const double seconds = total.elapsed_s();
  result.round_trips_per_s = seconds > 0 ? static_cast<double>(iterations) / seconds : 0;
  return result;
}

// Ping-pong of `msg_size` bytes (>= 1) between this process and a helper server on 127.0.0.1,
// TCP_NODELAY on both sides, `iterations` timed round trips after iterations/10 of warm-up.
PingPongResult tcp_pingpong(std::size_t msg_size, std::size_t iterations, IoMode mode);
// tcp_pingpong with plain blocking send/recv on both sides.
PingPongResult tcp_pingpong_blocking(std::size_t msg_size, std::size_t iterations);
// tcp_pingpong with both sides busy-polling recv/send(MSG_DONTWAIT).
PingPongResult tcp_pingpong_poll(std::size_t msg_size, std::size_t iterations);
// A sensible iteration count for the ping-pongs (20000, 2000 when quick).
std::size_t pingpong_iterations(Effort effort = {});

// Raw TCP stream bandwidth on 127.0.0.1: per repetition the client writes `size` bytes, the
// server reads them into a (reused, pre-touched) buffer and replies with a 1-byte ack.
struct StreamResult {
  double gib_per_s = 0;           // the faster of the two modes
  double blocking_gib_per_s = 0;  // size / median repetition time, blocking reads
  double polling_gib_per_s = 0;   // size / median repetition time, polling reads
  std::size_t repetitions = 0;    // per mode
};
// Measures both IoModes (a fresh helper per mode); >= 256 MiB or >= 20 repetitions per mode
// (32 MiB / 5 when quick). `size` >= 1.
StreamResult tcp_stream(std::size_t size, Effort effort = {});
// One mode of tcp_stream, `repetitions` timed (after one warm-up); returns GiB/s.
double tcp_stream_gib_per_s(std::size_t size, std::size_t repetitions, IoMode mode);

// memcpy of `size` bytes between two warm (touched, already copied once) buffers, in GiB/s of
// bytes copied; the median over samples of >= 1 MiB each.
double memcpy_bandwidth(std::size_t size, Effort effort = {});

// Median cost of std::thread create + join of an empty function, in ns.
double std_thread_create_join_ns(Effort effort = {});
// Median cost of a boost::fibers::fiber create + join of an empty function on the calling
// thread (its default round-robin scheduler and default stack allocator), in ns.
double boost_fiber_create_join_ns(Effort effort = {});

}  // namespace dango::bench
