// The `baselines` suite: every raw baseline alone, to sanity-check the machine before reading
// the other suites' ratios. Records have no baseline of their own (baseline "", ratio 1); the
// case is the baseline's name (the name other suites put in Record::baseline) plus the metric.

#include <cstddef>
#include <string>

#include "baselines.hpp"
#include "suite.hpp"

namespace dango::bench {
namespace {

// Stream and memcpy sizes: a small message, an eager/rendezvous boundary, bulk sizes in cache
// and well past it.
constexpr std::size_t kBandwidthSizes[] = {4 * kKiB, 64 * kKiB, 1 * kMiB, 16 * kMiB, 64 * kMiB};

void report_pingpong(Reporter& reporter, const std::string& name, const PingPongResult& r) {
  // 64 B: about an RPC header plus small arguments, the message of a typical small RPC.
  const std::size_t size = kPingPongMessageSize;
  reporter.add({.transport = "tcp",
                .case_name = name + "_median",
                .size = size,
                .value = r.median_us(),
                .unit = "us"});
  reporter.add({.transport = "tcp",
                .case_name = name + "_p99",
                .size = size,
                .value = r.p99_us(),
                .unit = "us"});
  reporter.add({.transport = "tcp",
                .case_name = name + "_rate",
                .size = size,
                .value = r.round_trips_per_s,
                .unit = "rt/s"});
}

void run_baselines(const Options& options, Reporter& reporter) {
  const Effort effort{.quick = options.quick};
  const std::size_t iterations = pingpong_iterations(effort);

  report_pingpong(reporter, "tcp_pingpong_blocking",
                  tcp_pingpong_blocking(kPingPongMessageSize, iterations));
  report_pingpong(reporter, "tcp_pingpong_poll",
                  tcp_pingpong_poll(kPingPongMessageSize, iterations));

  for (std::size_t size : kBandwidthSizes) {
    const StreamResult stream = tcp_stream(size, effort);
    const bool polling_won = stream.polling_gib_per_s >= stream.blocking_gib_per_s;
    reporter.add({.transport = "tcp",
                  .case_name = "tcp_stream",
                  .size = size,
                  .value = stream.gib_per_s,
                  .unit = "GiB/s",
                  .extra = {{"mode", polling_won ? "poll" : "blocking"}}});
  }
  for (std::size_t size : kBandwidthSizes) {
    reporter.add({.case_name = "memcpy_bandwidth",
                  .size = size,
                  .value = memcpy_bandwidth(size, effort),
                  .unit = "GiB/s"});
  }

  reporter.add({.case_name = "std_thread_create_join",
                .value = std_thread_create_join_ns(effort),
                .unit = "ns"});
  reporter.add({.case_name = "boost_fiber_create_join",
                .value = boost_fiber_create_join_ns(effort),
                .unit = "ns"});
}

}  // namespace

DANGO_REGISTER_BENCH_SUITE(baselines, run_baselines);

}  // namespace dango::bench
