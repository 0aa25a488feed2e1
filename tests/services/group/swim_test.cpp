// The SWIM protocol core, driven deterministically: by hand (time and messages as inputs) and
// through the simulated network (virtual clock), so every timing below is exact and repeatable.

#include "dango/services/group/swim.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "dango/services/group/simulation.hpp"

namespace dango::group::swim {
namespace {

using namespace std::chrono_literals;

SwimOptions test_options() {
  return SwimOptions{.period = 100ms,
                     .ping_timeout = 40ms,
                     .indirect_pings = 2,
                     .suspicion_timeout = 500ms,
                     .retransmit_multiplier = 3,
                     .max_piggyback = 8};
}

Update alive(const std::string& address, uint64_t incarnation = 0) {
  return Update{.address = address,
                .provider_id = 0,
                .incarnation = incarnation,
                .status = MemberStatus::kAlive};
}

// A core "a" in a group {a, b, c} started at time 0.
struct ThreeMembers {
  Core a{test_options(), "g", alive("a"), 7};
  ThreeMembers() { a.install({alive("a"), alive("b"), alive("c")}, 0ms); }
};

// Ticks `core` at each of its deadlines up to `until`, collecting everything it produced.
Output run_timers(Core& core, Time until) {
  Output all;
  while (core.next_deadline() <= until) {
    Output out;
    core.tick(core.next_deadline(), out);
    for (auto& m : out.messages) all.messages.push_back(std::move(m));
    for (auto& e : out.events) all.events.push_back(std::move(e));
  }
  return all;
}

// Runs `core`'s timers until it sends its first ping; returns that ping and its time.
std::pair<Outgoing, Time> first_ping(Core& core) {
  for (;;) {
    const Time at = core.next_deadline();
    Output out;
    core.tick(at, out);
    for (auto& m : out.messages) {
      if (m.message.kind == MessageKind::kPing) return {std::move(m), at};
    }
  }
}

TEST(SwimCore, PingIsAnsweredByAnAckWithTheSameSequence) {
  ThreeMembers g;
  Output out;
  g.a.on_message(
      Message{
          .kind = MessageKind::kPing, .seq = 42, .sender = alive("b"), .target = {}, .updates = {}},
      10ms, out);
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0].to, "b");
  EXPECT_EQ(out.messages[0].message.kind, MessageKind::kAck);
  EXPECT_EQ(out.messages[0].message.seq, 42u);
  EXPECT_EQ(out.messages[0].message.sender.address, "a");
}

TEST(SwimCore, UnansweredProbeGoesIndirectThenSuspectsThenDeclaresDeadOnce) {
  ThreeMembers g;
  // a pings someone; nobody answers anything.
  const auto [ping, at] = first_ping(g.a);
  const std::string target = ping.to;
  Output first = run_timers(g.a, at + 40ms);
  // After the ping timeout: ping-req to the other member, naming the target.
  const auto req =
      std::find_if(first.messages.begin(), first.messages.end(),
                   [](const Outgoing& o) { return o.message.kind == MessageKind::kPingReq; });
  ASSERT_NE(req, first.messages.end());
  EXPECT_NE(req->to, target);
  EXPECT_EQ(req->message.target, target);
  // Keep a's view: the target is suspected at the next period boundary, dead 500 ms later.
  Output later = run_timers(g.a, 1000ms);
  ASSERT_TRUE(g.a.record(target).has_value());
  EXPECT_EQ(g.a.record(target)->status, MemberStatus::kDead);
  const auto deaths = std::count_if(later.events.begin(), later.events.end(), [&](const Event& e) {
    return e.kind == EventKind::kDeath && e.member.address == target;
  });
  EXPECT_EQ(deaths, 1);
  EXPECT_FALSE(g.a.view().contains(target));
}

TEST(SwimCore, AckThroughAHelperKeepsTheTargetAlive) {
  ThreeMembers g;
  Output out;
  // Run to the indirect phase of the first probe.
  const auto [ping, at] = first_ping(g.a);
  Output first = run_timers(g.a, at + 40ms);
  const auto req =
      std::find_if(first.messages.begin(), first.messages.end(),
                   [](const Outgoing& o) { return o.message.kind == MessageKind::kPingReq; });
  ASSERT_NE(req, first.messages.end());
  // The helper relays the target's ack with the requester's sequence number.
  g.a.on_message(Message{.kind = MessageKind::kAck,
                         .seq = req->message.seq,
                         .sender = alive(req->to),
                         .target = req->message.target,
                         .updates = {}},
                 at + 50ms, out);
  run_timers(g.a, at + 100ms);  // the period's verdict
  EXPECT_EQ(g.a.record(req->message.target)->status, MemberStatus::kAlive);
}

TEST(SwimCore, HelperPingsTheTargetAndRelaysItsAck) {
  ThreeMembers g;
  Output out;
  g.a.on_message(Message{.kind = MessageKind::kPingReq,
                         .seq = 5,
                         .sender = alive("b"),
                         .target = "c",
                         .updates = {}},
                 10ms, out);
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0].to, "c");
  EXPECT_EQ(out.messages[0].message.kind, MessageKind::kPing);
  const uint64_t relay_seq = out.messages[0].message.seq;
  out.clear();
  g.a.on_message(Message{.kind = MessageKind::kAck,
                         .seq = relay_seq,
                         .sender = alive("c"),
                         .target = {},
                         .updates = {}},
                 20ms, out);
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0].to, "b");
  EXPECT_EQ(out.messages[0].message.kind, MessageKind::kAck);
  EXPECT_EQ(out.messages[0].message.seq, 5u);
}

TEST(SwimCore, SuspicionIsRefutedByAHigherIncarnation) {
  ThreeMembers g;
  Output out;
  g.a.apply(
      Update{.address = "b", .provider_id = 0, .incarnation = 0, .status = MemberStatus::kSuspect},
      0ms, out);
  EXPECT_EQ(g.a.record("b")->status, MemberStatus::kSuspect);
  g.a.apply(alive("b", 1), 100ms, out);
  EXPECT_EQ(g.a.record("b")->status, MemberStatus::kAlive);
  run_timers(g.a, 450ms);  // a's own probes may suspect again; not dead this early
  EXPECT_NE(g.a.record("b")->status, MemberStatus::kDead);
  EXPECT_TRUE(out.events.empty()) << "suspicion and refutation are not membership changes";
}

TEST(SwimCore, AccusedMemberRefutesWithAHigherIncarnation) {
  ThreeMembers g;
  Output out;
  g.a.on_message(Message{.kind = MessageKind::kPing,
                         .seq = 1,
                         .sender = alive("b"),
                         .target = {},
                         .updates = {Update{.address = "a",
                                            .provider_id = 0,
                                            .incarnation = 0,
                                            .status = MemberStatus::kSuspect}}},
                 10ms, out);
  EXPECT_EQ(g.a.self().incarnation, 1u);
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0].message.sender.incarnation, 1u);
  EXPECT_TRUE(std::any_of(out.messages[0].message.updates.begin(),
                          out.messages[0].message.updates.end(),
                          [](const Update& u) { return u.address == "a" && u.incarnation == 1; }));
}

TEST(SwimCore, RestartedMemberIsAdmittedWithANewIncarnationAndReportedAsJoined) {
  ThreeMembers g;
  Output out;
  g.a.apply(
      Update{.address = "b", .provider_id = 0, .incarnation = 0, .status = MemberStatus::kDead},
      0ms, out);
  out.clear();
  EXPECT_EQ(g.a.admit(alive("b", 0), 10ms, out), 1u);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].kind, EventKind::kJoin);
  EXPECT_EQ(out.events[0].member.incarnation, 1u);
  EXPECT_TRUE(g.a.view().contains("b"));
}

TEST(SwimCore, LeaveIsReportedOnceAndNeverAsDeath) {
  ThreeMembers g;
  Output out;
  const Update left{
      .address = "c", .provider_id = 0, .incarnation = 0, .status = MemberStatus::kLeft};
  g.a.apply(left, 0ms, out);
  g.a.apply(left, 1ms, out);
  g.a.apply(
      Update{.address = "c", .provider_id = 0, .incarnation = 0, .status = MemberStatus::kDead},
      2ms, out);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].kind, EventKind::kLeave);
  EXPECT_FALSE(g.a.view().contains("c"));
}

TEST(SwimCore, SameRecordsGiveTheSameVersionAndEveryChangeRaisesIt) {
  Core a{test_options(), "g", alive("a"), 1};
  Core b{test_options(), "g", alive("b"), 2};
  a.install({alive("a"), alive("b")}, 0ms);
  b.install({alive("a"), alive("b")}, 0ms);
  EXPECT_EQ(a.version(), b.version());
  const uint64_t before = a.version();
  Output out;
  a.apply(alive("c"), 0ms, out);
  EXPECT_GT(a.version(), before);
  const uint64_t joined = a.version();
  a.apply(Update{.address = "c", .provider_id = 0, .incarnation = 0, .status = MemberStatus::kDead},
          0ms, out);
  EXPECT_GT(a.version(), joined);
  const Membership view = a.view();
  ASSERT_EQ(view.size(), 2u);
  EXPECT_EQ(view.members[0].address, "a");
  EXPECT_EQ(view.members[1].rank, 1u);
}

TEST(SwimCore, AnUpdateIsPiggybackedAtMostTheRetransmitLimit) {
  ThreeMembers g;
  Output out;
  g.a.apply(alive("d"), 0ms, out);
  int carried = 0;
  for (int i = 0; i < 50; ++i) {
    Output o;
    g.a.on_message(Message{.kind = MessageKind::kPing,
                           .seq = static_cast<uint64_t>(i),
                           .sender = alive("b"),
                           .target = {},
                           .updates = {}},
                   1ms, o);
    for (const auto& m : o.messages) {
      carried += static_cast<int>(std::count_if(m.message.updates.begin(), m.message.updates.end(),
                                                [](const Update& u) { return u.address == "d"; }));
    }
  }
  // 4 live members: limit = 3 * bit_width(5) = 9.
  EXPECT_GT(carried, 0);
  EXPECT_LE(carried, 9);
}

// --- through the simulated network ---

SimulationOptions simulated(size_t members, double loss = 0) {
  return SimulationOptions{.members = members, .loss = loss, .swim = test_options(), .seed = 11};
}

size_t deaths_of(const Simulation& sim, size_t victim) {
  return static_cast<size_t>(std::count_if(
      sim.observations().begin(), sim.observations().end(), [&](const Observation& o) {
        return o.event.kind == EventKind::kDeath &&
               o.event.member.address == Simulation::address(victim);
      }));
}

TEST(SwimSimulation, CrashedMemberIsDeclaredDeadByEveryOtherMemberOnce) {
  Simulation sim(simulated(32));
  sim.run_for(1s);
  sim.crash(5);
  sim.run_for(3s);
  for (size_t i = 0; i < sim.size(); ++i) {
    if (i == 5) continue;
    EXPECT_EQ(sim.member(i).record(Simulation::address(5))->status, MemberStatus::kDead) << i;
    EXPECT_EQ(sim.member(i).live_count(), 31u) << i;
  }
  EXPECT_EQ(deaths_of(sim, 5), 31u);
}

TEST(SwimSimulation, NoMemberIsDeclaredDeadUnderOnePercentLoss) {
  Simulation sim(simulated(32, 0.01));
  sim.run_for(60s);
  for (const Observation& o : sim.observations()) {
    EXPECT_NE(o.event.kind, EventKind::kDeath)
        << o.event.member.address << " at " << o.time.count();
  }
}

TEST(SwimSimulation, MemberWhoseMessagesAreDroppedIsDeclaredDead) {
  Simulation sim(simulated(16));
  sim.run_for(500ms);
  sim.set_dropping(3, true);
  sim.run_for(3s);
  for (size_t i = 0; i < sim.size(); ++i) {
    if (i != 3) {
      EXPECT_EQ(sim.member(i).record(Simulation::address(3))->status, MemberStatus::kDead) << i;
    }
  }
}

TEST(SwimSimulation, DropStoppedBeforeTheSuspicionTimeoutRefutesAndStays) {
  Simulation sim(simulated(16));
  sim.run_for(500ms);
  sim.set_dropping(3, true);
  // Long enough to be suspected (a probe of member 3 by anyone fails within a few periods)...
  sim.run_for(300ms);
  bool suspected = false;
  for (size_t i = 0; i < sim.size(); ++i) {
    suspected |= sim.member(i).record(Simulation::address(3))->status == MemberStatus::kSuspect;
  }
  sim.set_dropping(3, false);
  sim.run_for(3s);
  EXPECT_EQ(deaths_of(sim, 3), 0u);
  for (size_t i = 0; i < sim.size(); ++i) {
    EXPECT_EQ(sim.member(i).record(Simulation::address(3))->status, MemberStatus::kAlive) << i;
  }
  if (suspected) {
    EXPECT_GE(sim.member(3).self().incarnation, 1u);
  }
}

TEST(SwimSimulation, MemberDeclaredDeadByMistakeRejoinsWhenItsMessagesFlowAgain) {
  Simulation sim(simulated(16));
  sim.run_for(500ms);
  sim.set_dropping(3, true);
  sim.run_for(3s);  // dead for everyone; everyone dead for it
  ASSERT_EQ(sim.member(0).record(Simulation::address(3))->status, MemberStatus::kDead);
  sim.set_dropping(3, false);
  sim.run_for(8s);  // a few rounds of pings to the dead
  for (size_t i = 0; i < sim.size(); ++i) {
    EXPECT_EQ(sim.member(i).live_count(), 16u) << i;
    EXPECT_EQ(sim.member(i).record(Simulation::address(3))->status, MemberStatus::kAlive) << i;
  }
  EXPECT_GE(sim.member(3).self().incarnation, 1u);
}

}  // namespace
}  // namespace dango::group::swim
