// Groups of real processes on loopback: build/bin/dango-group-member started with the `file`
// bootstrap from one config, killed (SIGKILL), restarted, stopped (SIGTERM: voluntary leave),
// and made to drop its messages (fault+tcp transport, SIGUSR1/SIGUSR2). Views are fetched from
// each member with the group client; observer events are read from each member's events file.
// Short protocol periods keep the suite fast; every process is killed and reaped by an RAII
// guard, even when a test fails.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "dango/services/group/client.hpp"
#include "rpc/rpc_test_util.hpp"

namespace dango::group {
namespace {

using namespace std::chrono_literals;
using rpc::testing::ChildProcess;
using rpc::testing::eventually;

// Short, for a fast suite, yet with room for the scheduling delays of a loaded 2-core machine
// (a refuted suspicion is harmless; a false death would fail the tests).
constexpr auto kPeriod = 250ms;
constexpr auto kPingTimeout = 150ms;
constexpr auto kSuspicion = 2000ms;
// Time to first suspicion (a few periods at worst in a small group) plus the suspicion timeout
// plus dissemination; generous for a loaded 2-core machine.
constexpr auto kDetectionLimit = kSuspicion + 10 * kPeriod;

std::string member_program() { return std::string(DANGO_BIN_DIR) + "/dango-group-member"; }

struct Member {
  std::string name;
  std::filesystem::path address_file;
  std::filesystem::path events_file;
  std::unique_ptr<ChildProcess> process;
  std::string address;

  // Lines "<kind> <address> <incarnation>" appended by the member's observer.
  std::vector<std::string> events() const {
    std::vector<std::string> lines;
    std::ifstream in(events_file);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }
  // Events of `kind` about `about` whose incarnation is at least `min_incarnation`.
  size_t count_events(const std::string& kind, const std::string& about,
                      uint64_t min_incarnation = 0) const {
    size_t count = 0;
    for (const std::string& line : events()) {
      std::istringstream in(line);
      std::string event_kind, address;
      uint64_t incarnation = 0;
      if (in >> event_kind >> address >> incarnation && event_kind == kind && address == about &&
          incarnation >= min_incarnation) {
        ++count;
      }
    }
    return count;
  }
};

class GroupProcesses : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(member_program().c_str(), X_OK) != 0) {
      GTEST_SKIP() << member_program() << " is not built (target dango-group-member)";
    }
    group_file_ = dir_.path() / "store.group";
  }

  std::string config(const std::string& address) {
    nlohmann::json json = {{"address", address},
                           {"group",
                            {{"name", "store"},
                             {"bootstrap", "file"},
                             {"file", group_file_.string()},
                             {"swim",
                              {{"period_ms", kPeriod.count()},
                               {"ping_timeout_ms", kPingTimeout.count()},
                               {"suspicion_timeout_ms", kSuspicion.count()}}}}}};
    if (default_swim_) json["group"].erase("swim");
    const auto path = dir_.path() / ("config-" + std::to_string(configs_++) + ".json");
    std::ofstream(path) << json.dump(2);
    return path.string();
  }

  // Starts a member (not waiting for it); `address` may be a fixed one (a restart) or
  // "fault+tcp://127.0.0.1:0" for a member whose messages the test will drop.
  Member& launch(const std::string& name, const std::string& address = "tcp://127.0.0.1:0") {
    auto member = std::make_unique<Member>();
    member->name = name;
    member->address_file = dir_.path() / (name + "." + std::to_string(launches_) + ".address");
    member->events_file = dir_.path() / (name + ".events");
    member->process = std::make_unique<ChildProcess>(
        member_program(), std::vector<std::string>{"--config", config(address), "--address-file",
                                                   member->address_file.string(), "--events-file",
                                                   member->events_file.string()});
    ++launches_;
    members_.push_back(std::move(member));
    return *members_.back();
  }
  void wait_ready(Member& member) {
    ASSERT_TRUE(eventually([&] { return std::filesystem::exists(member.address_file); }, 20s))
        << member.name << " never became a member";
    std::ifstream in(member.address_file);
    std::getline(in, member.address);
  }
  std::vector<Member*> start_group(size_t n) {
    std::vector<Member*> started;
    for (size_t i = 0; i < n; ++i) started.push_back(&launch("m" + std::to_string(i)));
    for (Member* m : started) wait_ready(*m);
    return started;
  }

  // The view `member` serves (an empty one when it does not answer).
  Membership view_of(const Member& member) {
    try {
      return Client{client_}.open(member.address, 0, 2s).membership();
    } catch (const Error&) {
      return {};
    }
  }
  static std::vector<std::string> addresses(const Membership& view) {
    std::vector<std::string> out;
    for (const auto& m : view.members) out.push_back(m.address);
    return out;
  }
  // True once every member of `live` serves a view of exactly the addresses of `live`.
  bool converged(const std::vector<Member*>& live) {
    std::vector<std::string> expected;
    for (const Member* m : live) expected.push_back(m->address);
    std::sort(expected.begin(), expected.end());
    return std::all_of(live.begin(), live.end(),
                       [&](const Member* m) { return addresses(view_of(*m)) == expected; });
  }

  rpc::testing::TempDir dir_;
  bool default_swim_ = false;  // members use the default SwimOptions (for a loaded node)
  std::filesystem::path group_file_;
  rpc::Engine client_{"tcp"};
  std::vector<std::unique_ptr<Member>> members_;
  int configs_ = 0;
  int launches_ = 0;
};

std::vector<Member*> without(std::vector<Member*> members, const Member* gone) {
  std::erase(members, gone);
  return members;
}

TEST_F(GroupProcesses, FiveMembersStartedWithTheFileBootstrapConvergeToOneView) {
  const auto members = start_group(5);
  ASSERT_TRUE(eventually([&] { return converged(members); }, 10s));
  // Same members; the versions agree once every refutation (under load) has spread too.
  ASSERT_TRUE(eventually(
      [&] {
        const uint64_t version = view_of(*members[0]).version;
        return std::all_of(members.begin(), members.end(),
                           [&](const Member* m) { return view_of(*m).version == version; });
      },
      10s));
  ASSERT_TRUE(eventually([&] { return Membership::load_file(group_file_).size() == 5; }, 5s));
}

TEST_F(GroupProcesses, KilledMemberIsDeclaredDeadByAllOnceFileRewrittenAndRestartRejoins) {
  const auto members = start_group(5);
  ASSERT_TRUE(eventually([&] { return converged(members); }, 10s));
  Member* victim = members[2];
  const auto survivors = without(members, victim);

  const auto killed_at = std::chrono::steady_clock::now();
  victim->process->kill(SIGKILL);
  ASSERT_TRUE(victim->process->wait_exit(5s).has_value());
  ASSERT_TRUE(eventually([&] { return converged(survivors); }, 20s));
  const auto detected_in = std::chrono::steady_clock::now() - killed_at;
  RecordProperty(
      "detection_ms",
      std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(detected_in).count()));
  EXPECT_LE(detected_in, kDetectionLimit)
      << std::chrono::duration_cast<std::chrono::milliseconds>(detected_in).count() << " ms";
  // Observers fire once per survivor; the file is rewritten without the victim.
  ASSERT_TRUE(eventually(
      [&] {
        return std::all_of(survivors.begin(), survivors.end(), [&](const Member* m) {
          return m->count_events("death", victim->address) == 1;
        });
      },
      5s));
  std::this_thread::sleep_for(3 * kPeriod);  // late duplicates would show by now
  for (const Member* m : survivors) {
    EXPECT_EQ(m->count_events("death", victim->address), 1u) << m->name;
    EXPECT_EQ(m->count_events("leave", victim->address), 0u) << m->name;
  }
  ASSERT_TRUE(eventually(
      [&] {
        const Membership file = Membership::load_file(group_file_);
        return file.size() == 4 && !file.contains(victim->address);
      },
      5s));

  // Restarted at the same address: rejoins as a new incarnation.
  Member& reborn = launch("m2", victim->address);
  wait_ready(reborn);
  EXPECT_EQ(reborn.address, victim->address);
  auto all = survivors;
  all.push_back(&reborn);
  ASSERT_TRUE(eventually([&] { return converged(all); }, 10s));
  for (const Member* m : all) {
    const Membership view = view_of(*m);
    ASSERT_NE(view.find(reborn.address), nullptr);
    EXPECT_GE(view.find(reborn.address)->incarnation, 1u) << m->name;
  }
  ASSERT_TRUE(eventually(
      [&] {
        return std::all_of(survivors.begin(), survivors.end(), [&](const Member* m) {
          return m->count_events("join", reborn.address, 1) == 1;
        });
      },
      5s));
}

TEST_F(GroupProcesses, MemberThatLeavesIsRemovedAtOnceNotSuspected) {
  const auto members = start_group(4);
  ASSERT_TRUE(eventually([&] { return converged(members); }, 10s));
  Member* leaver = members[1];
  const auto others = without(members, leaver);
  const auto asked_at = std::chrono::steady_clock::now();
  leaver->process->kill(SIGTERM);
  const auto status = leaver->process->wait_exit(10s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  ASSERT_TRUE(eventually([&] { return converged(others); }, 10s));
  // Removed well before a suspicion could have run out.
  EXPECT_LT(std::chrono::steady_clock::now() - asked_at, kSuspicion);
  for (const Member* m : others) {
    EXPECT_EQ(m->count_events("leave", leaver->address), 1u) << m->name;
    EXPECT_EQ(m->count_events("death", leaver->address), 0u) << m->name;
  }
}

TEST_F(GroupProcesses, MemberWhoseMessagesAreDroppedIsDeclaredDeadAndRejoinsWhenTheyFlowAgain) {
  auto members = start_group(3);
  Member& faulty = launch("faulty", "fault+tcp://127.0.0.1:0");
  wait_ready(faulty);
  members.push_back(&faulty);
  ASSERT_TRUE(eventually([&] { return converged(members); }, 10s));
  faulty.process->kill(SIGUSR1);  // drops every message in and out from now on
  const auto others = without(members, &faulty);
  ASSERT_TRUE(eventually(
      [&] {
        return std::all_of(others.begin(), others.end(), [&](const Member* m) {
          return m->count_events("death", faulty.address) == 1;
        });
      },
      kDetectionLimit + 5s));
  // Alive all along: once its messages flow, it learns of its death, refutes and is back.
  faulty.process->kill(SIGUSR2);
  ASSERT_TRUE(eventually([&] { return converged(members); }, 15s));
  for (const Member* m : others) {
    const Membership view = view_of(*m);
    ASSERT_NE(view.find(faulty.address), nullptr) << m->name;
    EXPECT_GE(view.find(faulty.address)->incarnation, 1u) << m->name;
  }
}

TEST_F(GroupProcesses, DropStoppedBeforeTheSuspicionTimeoutRefutesAndStays) {
  auto members = start_group(3);
  Member& faulty = launch("faulty", "fault+tcp://127.0.0.1:0");
  wait_ready(faulty);
  members.push_back(&faulty);
  ASSERT_TRUE(eventually([&] { return converged(members); }, 10s));
  faulty.process->kill(SIGUSR1);
  std::this_thread::sleep_for(kSuspicion * 6 / 10);  // suspected by now, not yet dead
  faulty.process->kill(SIGUSR2);
  std::this_thread::sleep_for(kSuspicion + 4 * kPeriod);
  ASSERT_TRUE(eventually([&] { return converged(members); }, 10s));
  for (const Member* m : members) {
    EXPECT_EQ(m->count_events("death", faulty.address), 0u) << m->name;
    const Membership view = view_of(*m);
    ASSERT_NE(view.find(faulty.address), nullptr);
    EXPECT_GE(view.find(faulty.address)->incarnation, 1u) << m->name << ": no refutation";
  }
}

// A child process spinning on a CPU; its guard kills and reaps it.
dango::testing::ChildPid cpu_hog() {
  return dango::testing::ChildPid::fork([] {
    volatile uint64_t spin = 0;
    for (;;) spin = spin + 1;
    return 0;
  });
}

// The 60-second check of the default settings; run with DANGO_LONG_TESTS=1 (it would
// double this suite's time otherwise).
TEST_F(GroupProcesses, NoMemberIsDeclaredDeadDuringAMinuteOfSaturatedCpu) {
  if (std::getenv("DANGO_LONG_TESTS") == nullptr) GTEST_SKIP() << "set DANGO_LONG_TESTS=1 to run";
  default_swim_ = true;
  const auto members = start_group(5);
  ASSERT_TRUE(eventually([&] { return converged(members); }, 20s));
  {
    std::vector<dango::testing::ChildPid> hogs;
    for (long i = 0; i < 2 * ::sysconf(_SC_NPROCESSORS_ONLN); ++i) hogs.push_back(cpu_hog());
    std::this_thread::sleep_for(60s);
  }
  ASSERT_TRUE(eventually([&] { return converged(members); }, 20s));
  for (const Member* m : members) {
    for (const std::string& line : m->events()) {
      EXPECT_EQ(line.rfind("death ", 0), std::string::npos) << m->name << ": " << line;
    }
  }
}

}  // namespace
}  // namespace dango::group
