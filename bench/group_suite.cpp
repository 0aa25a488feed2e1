// The `group` suite: SWIM failure detection at scale, by simulation. The protocol code is the
// member agent's own (group::swim::Core) run against a simulated network (virtual clock, loss,
// 0.2-2 ms one-way delay; group/simulation.hpp), with the default SwimOptions, for 16, 128 and
// 1,024 members. Cases (records carry "members" and "loss" as extra fields):
//
//   detect_median, detect_p99      seconds from a crash until every live member has declared
//                                  the crashed one dead (loss 0). Baseline: the same figure at
//                                  16 members in this run, so the ratio shows how detection
//                                  grows with size (SWIM: independent of size; target p99 at
//                                  1,024 <= 2x the one at 16). Extra "swim_first_detection_s":
//                                  SWIM's expected time to the first suspicion, e/(e-1) periods,
//                                  plus the suspicion timeout.
//   false_positive_rate            deaths of live members per member-period under 1% and 5%
//                                  loss (target at 1%: <= 0.001). Baseline at 1%: the target.
//   messages_per_member_period     protocol messages sent per member per period (loss 0, 1%,
//                                  5%). Baseline: the same at 16 members (SWIM: constant).

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "dango/services/group/simulation.hpp"
#include "suite.hpp"

namespace dango::bench {
namespace {

using group::swim::EventKind;
using group::swim::Simulation;
using group::swim::SimulationOptions;
using group::swim::Time;
using namespace std::chrono_literals;

constexpr size_t kSizes[] = {16, 128, 1024};
constexpr double kLosses[] = {0.01, 0.05};
constexpr double kFalsePositiveTarget = 0.001;  // at 1% loss, per member-period

struct Plan {
  size_t detections;      // crashes measured per size
  size_t steady_periods;  // periods of the false-positive / message-load runs
};

Plan make_plan(bool quick) {
  return quick ? Plan{.detections = 12, .steady_periods = 60}
               : Plan{.detections = 60, .steady_periods = 400};
}

double seconds(Time t) { return std::chrono::duration<double>(t).count(); }

// Crashes members one after the other and measures, for each, the time until every live member
// has declared it dead. A simulation is reused for up to n/8 crashes (the group shrinks a
// little), then a fresh one starts.
std::vector<double> detection_times(size_t members, size_t count) {
  std::vector<double> times;
  const size_t per_simulation = std::max<size_t>(1, members / 8);
  uint64_t seed = 1;
  while (times.size() < count) {
    Simulation sim(SimulationOptions{.members = members, .loss = 0, .swim = {}, .seed = seed++});
    sim.run_for(5s);  // past the start-up staggering
    size_t seen = 0;  // observations already examined
    for (size_t k = 0; k < per_simulation && times.size() < count; ++k) {
      const size_t victim = (k * 7919 + seed) % members;
      if (sim.crashed(victim)) continue;
      size_t live = 0;
      for (size_t i = 0; i < members; ++i) live += sim.crashed(i) ? 0 : 1;
      sim.crash(victim);
      const Time crashed_at = sim.now();
      std::set<size_t> declared;
      seen = sim.observations().size();
      while (declared.size() < live - 1 && sim.now() - crashed_at < 120s) {
        sim.run_for(50ms);
        const auto& observations = sim.observations();
        for (; seen < observations.size(); ++seen) {
          const auto& o = observations[seen];
          if (o.event.kind == EventKind::kDeath &&
              o.event.member.address == Simulation::address(victim) && !sim.crashed(o.observer)) {
            declared.insert(o.observer);
          }
        }
      }
      times.push_back(seconds(sim.now() - crashed_at));
      sim.run_for(2s);
    }
  }
  return times;
}

struct SteadyRun {
  double false_positive_rate = 0;
  double messages_per_member_period = 0;
};

// No crash: counts the deaths of live members and the messages sent.
SteadyRun steady_run(size_t members, double loss, size_t periods) {
  const group::SwimOptions swim{};
  Simulation sim(SimulationOptions{.members = members, .loss = loss, .swim = swim, .seed = 99});
  sim.run_for(3 * swim.period);  // start-up
  const uint64_t messages_before = sim.messages_sent();
  const size_t observations_before = sim.observations().size();
  sim.run_for(swim.period * static_cast<int64_t>(periods));
  // One incident per (member, incarnation) declared dead, however many members declared it.
  std::set<std::pair<std::string, uint64_t>> incidents;
  const auto& observations = sim.observations();
  for (size_t i = observations_before; i < observations.size(); ++i) {
    if (observations[i].event.kind == EventKind::kDeath) {
      incidents.emplace(observations[i].event.member.address,
                        observations[i].event.member.incarnation);
    }
  }
  const double member_periods = static_cast<double>(members) * static_cast<double>(periods);
  return SteadyRun{.false_positive_rate = static_cast<double>(incidents.size()) / member_periods,
                   .messages_per_member_period =
                       static_cast<double>(sim.messages_sent() - messages_before) / member_periods};
}

std::map<std::string, std::string> labels(size_t members, double loss) {
  char text[16];
  std::snprintf(text, sizeof text, "%g", loss);
  return {{"members", std::to_string(members)}, {"loss", text}};
}

void run_group_suite(const Options& options, Reporter& reporter) {
  const Plan plan = make_plan(options.quick);
  const group::SwimOptions swim{};
  const double expected_first =
      M_E / (M_E - 1) * seconds(swim.period) + seconds(swim.suspicion_timeout);

  double median_16 = 0, p99_16 = 0;
  for (const size_t n : kSizes) {
    const std::vector<double> times = detection_times(n, plan.detections);
    const double med = median(times), tail = p99(times);
    if (n == kSizes[0]) {
      median_16 = med;
      p99_16 = tail;
    }
    auto extra = labels(n, 0);
    extra["swim_first_detection_s"] = std::to_string(expected_first);
    reporter.add({.case_name = "detect_median",
                  .value = med,
                  .unit = "s",
                  .baseline = "members_16",
                  .baseline_value = median_16,
                  .extra = extra});
    reporter.add({.case_name = "detect_p99",
                  .value = tail,
                  .unit = "s",
                  .baseline = "members_16",
                  .baseline_value = p99_16,
                  .extra = extra});
  }

  std::map<double, double> messages_16;
  for (const double loss : {0.0, kLosses[0], kLosses[1]}) {
    for (const size_t n : kSizes) {
      const SteadyRun run = steady_run(n, loss, plan.steady_periods);
      if (n == kSizes[0]) messages_16[loss] = run.messages_per_member_period;
      if (loss > 0) {
        Record record{.case_name = "false_positive_rate",
                      .value = run.false_positive_rate,
                      .unit = "per member-period",
                      .extra = labels(n, loss)};
        if (loss == kLosses[0]) {
          record.baseline = "target";
          record.baseline_value = kFalsePositiveTarget;
          record.ratio = run.false_positive_rate / kFalsePositiveTarget;
        }
        reporter.add(record);
      }
      reporter.add({.case_name = "messages_per_member_period",
                    .value = run.messages_per_member_period,
                    .unit = "msgs",
                    .baseline = "members_16",
                    .baseline_value = messages_16[loss],
                    .extra = labels(n, loss)});
    }
  }
}

}  // namespace

DANGO_REGISTER_BENCH_SUITE(group, run_group_suite);

}  // namespace dango::bench
