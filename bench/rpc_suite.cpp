// The `rpc` suite: what an empty RPC costs between two real processes, next to a raw TCP
// ping-pong of the same size measured in the same run.
//
// The server is this binary re-exec'd as helper "rpc_bench_server" (rpc_bench_server.cpp): an
// Engine with the default options, so the progress loop polls for its default 10 ms window
// after activity. The client is an Engine with default options in this process; every timed
// loop runs in one client ULT.
//
//   latency_median, latency_p99    sequential empty RPCs, µs per call. Baseline:
//                                  tcp_pingpong_poll (median / p99) of the same message size;
//                                  for sm, shm_pingpong (two processes on shared cache lines).
//   throughput_1, _8, _64          empty RPCs/s with 1, 8, 64 calls outstanding (one ULT keeping
//                                  N .async() calls in flight). Baseline: the round trips per
//                                  second of that same ping-pong.
//   inprocess_latency_median       an empty RPC to engine.self() (a function call on the
//                                  caller's ULT), µs. Baseline: std_function_call.
//   tcp_pingpong_blocking_median   informational (no baseline): the ping-pong when both sides
//                                  sleep in the kernel, i.e. what wake-ups cost.
//   latency_median_vs_ofi          ofi+<provider> only: latency_median again, against
//                                  ofi_pingpong (raw fi_send/fi_recv of the same size on that
//                                  provider, busy-polling): what Dango adds to libfabric itself.
//   monitored_latency_median       sequential empty RPCs with monitoring on at both ends
//                                  (dango::monitor), µs. Baseline: latency_median of this run,
//                                  so the ratio is what monitoring costs.
//   ult_sleep_200us                this_ult::sleep_for(200 µs) in a ULT of an idle engine (its
//                                  progress loop asleep in the kernel), µs actually slept.
//                                  Baseline: std::this_thread::sleep_for(200 µs) on an OS thread.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "baselines.hpp"
#include "ofi_baselines.hpp"
#include "bench_server.hpp"
#include "dango/net/transport.hpp"
#include "dango/rpc/engine.hpp"
#include "dango/services/monitor/monitoring.hpp"
#include "dango/thread/thread.hpp"
#include "sm_baselines.hpp"
#include "suite.hpp"

namespace dango::bench {
namespace {

// An empty RPC on tcp is one 48-byte message each way: the transport's 16-byte frame header
// (src/net/tcp/frame.hpp, BaseHeader) plus the 32-byte RPC header (src/rpc/message.hpp,
// MessageHeader), no payload. The ping-pong baselines use this size so that both sides move the
// same bytes.
constexpr std::size_t kEmptyRpcMessageSize = 16 + 32;

// RPC names served by rpc_bench_server.cpp.
constexpr const char* kEmptyRpc = "bench_empty";

constexpr std::size_t kOutstanding[] = {1, 8, 64};

struct Plan {
  std::size_t latency_iterations;  // timed sequential calls (plus a tenth as warm-up)
  std::size_t throughput_calls;    // calls per throughput sample
  std::size_t throughput_samples;  // timed samples per outstanding count (after one warm-up)
  std::size_t inprocess_batch;     // in-process calls per sample (one is too short to time)
  std::size_t inprocess_samples;
};

Plan make_plan(bool quick) {
  if (quick) {
    return {.latency_iterations = 2000,
            .throughput_calls = 2000,
            .throughput_samples = 3,
            .inprocess_batch = 1000,
            .inprocess_samples = 30};
  }
  return {.latency_iterations = 20000,
          .throughput_calls = 20000,
          .throughput_samples = 5,
          .inprocess_batch = 10000,
          .inprocess_samples = 100};
}

std::vector<double> sequential_latency_us(rpc::Engine& engine, const rpc::Endpoint& server,
                                          std::size_t iterations) {
  const auto empty = engine.rpc<void()>(kEmptyRpc).on(server);
  return in_ult<std::vector<double>>(engine, [&] {
    for (std::size_t i = 0; i < iterations / 10 + 1; ++i) empty();
    std::vector<double> us;
    us.reserve(iterations);
    for (std::size_t i = 0; i < iterations; ++i) {
      const std::int64_t start = now_ns();
      empty();
      us.push_back(static_cast<double>(now_ns() - start) / 1e3);
    }
    return us;
  });
}

// `calls` empty RPCs from one ULT keeping `outstanding` in flight (waited oldest first); RPC/s.
double throughput_sample(const rpc::CallTarget<void()>& empty, std::size_t outstanding,
                         std::size_t calls) {
  std::vector<rpc::Pending<void>> ring(outstanding);
  const Stopwatch watch;
  std::size_t issued = 0;
  for (; issued < outstanding && issued < calls; ++issued) ring[issued] = empty.async();
  for (std::size_t done = 0; done < calls; ++done) {
    ring[done % outstanding].wait();
    if (issued < calls) ring[issued++ % outstanding] = empty.async();
  }
  return static_cast<double>(calls) / watch.elapsed_s();
}

double throughput(rpc::Engine& engine, const rpc::Endpoint& server, std::size_t outstanding,
                  const Plan& plan) {
  const auto empty = engine.rpc<void()>(kEmptyRpc).on(server);
  return in_ult<double>(engine, [&] {
    throughput_sample(empty, outstanding, plan.throughput_calls / 4);  // warm-up
    std::vector<double> rates;
    for (std::size_t s = 0; s < plan.throughput_samples; ++s) {
      rates.push_back(throughput_sample(empty, outstanding, plan.throughput_calls));
    }
    return median(std::move(rates));
  });
}

// Median over samples of `batch` calls of `call`, in µs per call (after two warm-up samples).
double batched_median_us(std::size_t samples, std::size_t batch,
                         const std::function<void()>& call) {
  std::vector<double> us;
  for (std::size_t s = 0; s < samples + 2; ++s) {
    const Stopwatch watch;
    for (std::size_t i = 0; i < batch; ++i) call();
    if (s >= 2) us.push_back(watch.elapsed_us() / static_cast<double>(batch));
  }
  return median(std::move(us));
}

double inprocess_latency_us(rpc::Engine& engine, const Plan& plan) {
  engine.define(kEmptyRpc, [] {});
  const auto empty = engine.rpc<void()>(kEmptyRpc).on(engine.self());
  const double us = in_ult<double>(engine, [&] {
    return batched_median_us(plan.inprocess_samples, plan.inprocess_batch, [&] { empty(); });
  });
  engine.deregister(kEmptyRpc);
  return us;
}

// The floor of an in-process call: a type-erased call of an empty function, which is what a
// handler registry must do at least. The compiler may not see through `function` (it is
// "changed" by the asm barrier before each call), so each call is a real indirect call.
double std_function_call_us(const Plan& plan) {
  std::function<void()> function = [] {};
  return batched_median_us(plan.inprocess_samples, plan.inprocess_batch, [&] {
    do_not_optimize(&function);
    function();
  });
}

constexpr auto kShortSleep = std::chrono::microseconds(200);

// Median time, in µs, that `sleep` took over `samples` calls (after a few warm-up ones).
double sleep_median_us(std::size_t samples, const std::function<void()>& sleep) {
  std::vector<double> us;
  for (std::size_t i = 0; i < samples + 3; ++i) {
    const Stopwatch watch;
    sleep();
    if (i >= 3) us.push_back(watch.elapsed_us());
  }
  return median(std::move(us));
}

// A short ULT sleep once the engine has been idle long enough for its progress loop to sleep
// in the kernel: the timer, not the next network event, must end the sleep.
double ult_sleep_us(rpc::Engine& engine, std::size_t samples) {
  return in_ult<double>(engine, [&] {
    thread::this_ult::sleep_for(std::chrono::milliseconds(50));  // past the polling window
    return sleep_median_us(samples, [] { thread::this_ult::sleep_for(kShortSleep); });
  });
}

void run_for_transport(const std::string& transport, const std::string& listen_address,
                       const Plan& plan, const Options& options, Reporter& reporter) {
  const Effort effort{.quick = options.quick};
  const std::size_t iterations = pingpong_iterations(effort);
  // The raw limit of the medium: shared cache lines for sm, a polling TCP ping-pong otherwise
  // (tcp, and ofi+tcp, which runs over TCP sockets too).
  const bool same_node = transport == "sm";
  const std::string baseline = same_node ? "shm_pingpong" : "tcp_pingpong_poll";
  const PingPongResult poll =
      same_node ? shm_pingpong(iterations) : tcp_pingpong_poll(kEmptyRpcMessageSize, iterations);
  const std::optional<PingPongResult> blocking =
      same_node ? std::nullopt
                : std::optional(tcp_pingpong_blocking(kEmptyRpcMessageSize, iterations));

  const std::string provider = ofi_provider_of(transport);
  std::optional<PingPongResult> raw_ofi;
  if (!provider.empty()) {
    try {
      raw_ofi = ofi_pingpong(provider, kEmptyRpcMessageSize, iterations);
    } catch (const std::exception& e) {
      std::cerr << "rpc suite: no raw libfabric baseline for " << transport << ": " << e.what()
                << "\n";
    }
  }

  rpc::Engine engine{rpc::EngineOptions{.address = transport}};  // default options: a client
  std::vector<double> latency;
  double rates[std::size(kOutstanding)] = {};
  {
    const BenchServer server(engine, listen_address, /*bulk_size=*/0);
    latency = sequential_latency_us(engine, server.endpoint(), plan.latency_iterations);
    for (std::size_t i = 0; i < std::size(kOutstanding); ++i) {
      rates[i] = throughput(engine, server.endpoint(), kOutstanding[i], plan);
    }
  }
  std::vector<double> monitored_latency;
  {
    // Monitoring on at both ends, as dango-daemon's "monitoring" section turns it on.
    monitor::Monitoring monitoring(engine, monitor::MonitoringOptions{});
    const BenchServer server(engine, listen_address, /*bulk_size=*/0, /*monitored=*/true);
    monitored_latency = sequential_latency_us(engine, server.endpoint(), plan.latency_iterations);
  }
  const double inprocess = inprocess_latency_us(engine, plan);
  const std::size_t sleeps = options.quick ? 50 : 300;
  const double ult_sleep = ult_sleep_us(engine, sleeps);
  const double thread_sleep =
      sleep_median_us(sleeps, [] { std::this_thread::sleep_for(kShortSleep); });
  const double function_call = std_function_call_us(plan);

  const std::uint64_t size = kEmptyRpcMessageSize;
  reporter.add({.transport = transport,
                .case_name = "latency_median",
                .size = size,
                .value = median(latency),
                .unit = "us",
                .baseline = baseline,
                .baseline_value = poll.median_us()});
  if (raw_ofi) {
    reporter.add({.transport = transport,
                  .case_name = "latency_median_vs_ofi",
                  .size = size,
                  .value = median(latency),
                  .unit = "us",
                  .baseline = "ofi_pingpong",
                  .baseline_value = raw_ofi->median_us()});
  }
  reporter.add({.transport = transport,
                .case_name = "latency_p99",
                .size = size,
                .value = p99(latency),
                .unit = "us",
                .baseline = baseline,
                .baseline_value = poll.p99_us()});
  for (std::size_t i = 0; i < std::size(kOutstanding); ++i) {
    reporter.add({.transport = transport,
                  .case_name = "throughput_" + std::to_string(kOutstanding[i]),
                  .size = size,
                  .value = rates[i],
                  .unit = "ops/s",
                  .baseline = baseline,
                  .baseline_value = poll.round_trips_per_s,
                  .extra = {{"outstanding", std::to_string(kOutstanding[i])}}});
  }
  reporter.add({.transport = transport,
                .case_name = "inprocess_latency_median",
                .value = inprocess,
                .unit = "us",
                .baseline = "std_function_call",
                .baseline_value = function_call});
  reporter.add({.transport = transport,
                .case_name = "monitored_latency_median",
                .size = size,
                .value = median(monitored_latency),
                .unit = "us",
                .baseline = "latency_median",
                .baseline_value = median(latency)});
  reporter.add({.transport = transport,
                .case_name = "ult_sleep_200us",
                .value = ult_sleep,
                .unit = "us",
                .baseline = "thread_sleep_200us",
                .baseline_value = thread_sleep});
  if (blocking) {
    reporter.add({.transport = transport,
                  .case_name = "tcp_pingpong_blocking_median",
                  .size = size,
                  .value = blocking->median_us(),
                  .unit = "us"});
  }
}

void run_rpc_suite(const Options& options, Reporter& reporter) {
  const Plan plan = make_plan(options.quick);
  const std::vector<std::string> registered = net::registered_transports();
  for (const std::string& transport : options.transports) {
    const auto address = server_address(transport);
    if (!address ||
        std::find(registered.begin(), registered.end(), transport) == registered.end()) {
      std::cerr << "rpc suite: skipping transport \"" << transport
                << "\" (not supported by the engine or by this suite)\n";
      continue;
    }
    run_for_transport(transport, *address, plan, options, reporter);
  }
}

}  // namespace

DANGO_REGISTER_BENCH_SUITE(rpc, run_rpc_suite);

}  // namespace dango::bench
