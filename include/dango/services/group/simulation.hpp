#pragma once
// A simulated network for the SWIM core: N members in one process, a virtual clock, message
// loss and delay, crashes and dropped members. The protocol code is the member agent's own
// (swim::Core); only the transport and the clock are simulated. Used by `dango-bench group`
// (detection time, false positives and message load at 16 to 1,024 members) and by the
// protocol tests, which need exact, repeatable timings.

#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "dango/services/group/options.hpp"
#include "dango/services/group/swim.hpp"

namespace dango::group::swim {

struct SimulationOptions {
  size_t members = 16;                       // all start in one static view
  double loss = 0;                           // probability that a message is lost
  std::chrono::microseconds min_delay{200};  // one-way delay, uniform in [min, max]
  std::chrono::microseconds max_delay{2000};
  SwimOptions swim{};  // every member's protocol options
  uint64_t seed = 1;   // the run is a function of the seed
};

// An observer event as a member saw it, with the virtual time.
struct Observation {
  Time time{};
  size_t observer = 0;  // the member that saw it
  Event event;
};

class Simulation {
 public:
  explicit Simulation(SimulationOptions options);
  ~Simulation();
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;

  // Runs the network and every member's timers until the virtual time `until`.
  void run_until(Time until);
  void run_for(Time duration) { run_until(now() + duration); }
  Time now() const { return now_; }

  // Member `i` stops: it neither runs nor receives anything from now on (a SIGKILL).
  void crash(size_t i);
  // While on, every message member `i` sends or should receive is lost (it keeps running).
  void set_dropping(size_t i, bool on);
  bool crashed(size_t i) const;

  size_t size() const;
  const Core& member(size_t i) const;
  static std::string address(size_t i);  // "sim://<i>"
  // Every observer event since the start, in time order.
  const std::vector<Observation>& observations() const { return observations_; }
  // Protocol messages sent since the start (lost ones included).
  uint64_t messages_sent() const { return messages_sent_; }

 private:
  struct Impl;
  void process(size_t member, Output& out);
  std::unique_ptr<Impl> impl_;
  Time now_{};
  std::vector<Observation> observations_;
  uint64_t messages_sent_ = 0;
};

}  // namespace dango::group::swim
