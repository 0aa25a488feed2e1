// The `thread` suite: what Dango's user-level threads cost, next to Boost.Fiber (a bare fiber
// library, the floor) and std::thread (what a ULT saves), all measured in the same run.
//
//   ult_create_join               spawn an empty ULT into a pool and join it, from inside a ULT,
//                                 on a runtime with one execution stream: what a handler that
//                                 forks work meets first. Baselines: boost_fiber (create + join
//                                 of an empty fiber), std_thread (create + join of a thread).
//   ult_create_join_from_primary  the same, from the primary thread (outside any ULT): the join
//                                 runs the primary pool's ULT on the caller's thread.
//   ult_yield                     two ULTs ping-ponging this_ult::yield() on one stream, ns per
//                                 yield (one switch). Baseline: two Boost fibers ping-ponging
//                                 boost::this_fiber::yield() on one thread.
//
// Every figure is the median over samples, each timing a batch of operations (one operation is
// too short for a clock read of its own).

#include <boost/fiber/all.hpp>
#include <cstddef>
#include <functional>
#include <vector>

#include "baselines.hpp"
#include "dango/thread/thread.hpp"
#include "suite.hpp"

namespace dango::bench {
namespace {

namespace dt = dango::thread;

// How many timed samples, and operations per sample.
struct Plan {
  std::size_t samples;
  std::size_t batch;
  std::size_t warmup = 3;  // untimed samples first: stacks cached, code and data warm
};

Plan create_join_plan(bool quick) {
  return quick ? Plan{.samples = 30, .batch = 500} : Plan{.samples = 300, .batch = 1000};
}
Plan yield_plan(bool quick) {
  return quick ? Plan{.samples = 15, .batch = 5000} : Plan{.samples = 100, .batch = 20000};
}

// Median over plan.samples of sample(plan.batch), each sample returning ns per operation.
double median_of(const Plan& plan, const std::function<double(std::size_t)>& sample) {
  std::vector<double> ns;
  ns.reserve(plan.samples);
  for (std::size_t s = 0; s < plan.warmup + plan.samples; ++s) {
    const double value = sample(plan.batch);
    if (s >= plan.warmup) ns.push_back(value);
  }
  return median(std::move(ns));
}

// Runs `body` inside a ULT of pool "bench", served by the runtime's one execution stream, and
// returns what it returns. The primary thread only waits for the result.
double inside_one_stream_runtime(const std::function<double(const dt::Pool&)>& body) {
  dt::Runtime runtime{
      {.pools = {{.name = "bench"}}, .xstreams = {{.name = "bench", .pools = {"bench"}}}}};
  const dt::Pool pool = runtime.pool("bench");
  double result = 0;
  pool.spawn([&] { result = body(pool); }).join();
  return result;
}

// Timed loop of spawn + join of an empty ULT in `pool`: ns per create + join.
double create_join_batch_ns(const dt::Pool& pool, std::size_t batch) {
  const Stopwatch watch;
  for (std::size_t i = 0; i < batch; ++i) pool.spawn([] {}).join();
  return watch.elapsed_ns() / static_cast<double>(batch);
}

double ult_create_join_from_ult_ns(const Plan& plan) {
  return inside_one_stream_runtime([&](const dt::Pool& pool) {
    return median_of(plan, [&](std::size_t batch) { return create_join_batch_ns(pool, batch); });
  });
}

double ult_create_join_from_primary_ns(const Plan& plan) {
  dt::Runtime runtime;
  const dt::Pool pool = runtime.primary_pool();
  return median_of(plan, [&](std::size_t batch) { return create_join_batch_ns(pool, batch); });
}

double ult_yield_ns(const Plan& plan) {
  return inside_one_stream_runtime([&](const dt::Pool& pool) {
    return median_of(plan, [&](std::size_t yields) {
      auto player = [yields] {
        for (std::size_t i = 0; i < yields; ++i) dt::this_ult::yield();
      };
      // The timing ULT is blocked in join() meanwhile: the two players alternate alone.
      const Stopwatch watch;
      dt::Ult a = pool.spawn(player);
      dt::Ult b = pool.spawn(player);
      a.join();
      b.join();
      return watch.elapsed_ns() / static_cast<double>(2 * yields);
    });
  });
}

// The same ping-pong with Boost.Fiber's default round-robin scheduler on the calling thread.
double boost_fiber_yield_ns(const Plan& plan) {
  return median_of(plan, [](std::size_t yields) {
    auto player = [yields] {
      for (std::size_t i = 0; i < yields; ++i) boost::this_fiber::yield();
    };
    const Stopwatch watch;
    boost::fibers::fiber a(player);
    boost::fibers::fiber b(player);
    a.join();
    b.join();
    return watch.elapsed_ns() / static_cast<double>(2 * yields);
  });
}

void run_thread_suite(const Options& options, Reporter& reporter) {
  const Effort effort{.quick = options.quick};
  const Plan create_join = create_join_plan(options.quick);
  const Plan yield = yield_plan(options.quick);

  const double fiber_create_join = boost_fiber_create_join_ns(effort);
  const double thread_create_join = std_thread_create_join_ns(effort);
  const double from_ult = ult_create_join_from_ult_ns(create_join);
  const double from_primary = ult_create_join_from_primary_ns(create_join);
  reporter.add({.case_name = "ult_create_join",
                .value = from_ult,
                .unit = "ns",
                .baseline = "boost_fiber",
                .baseline_value = fiber_create_join,
                .extra = {{"from", "ult"}}});
  reporter.add({.case_name = "ult_create_join",
                .value = from_ult,
                .unit = "ns",
                .baseline = "std_thread",
                .baseline_value = thread_create_join,
                .extra = {{"from", "ult"}}});
  reporter.add({.case_name = "ult_create_join_from_primary",
                .value = from_primary,
                .unit = "ns",
                .baseline = "boost_fiber",
                .baseline_value = fiber_create_join,
                .extra = {{"from", "primary"}}});

  const double fiber_yield = boost_fiber_yield_ns(yield);
  const double ult_yield = ult_yield_ns(yield);
  reporter.add({.case_name = "ult_yield",
                .value = ult_yield,
                .unit = "ns",
                .baseline = "boost_fiber",
                .baseline_value = fiber_yield});
}

}  // namespace

DANGO_REGISTER_BENCH_SUITE(thread, run_thread_suite);

}  // namespace dango::bench
