// Deployments of several dango-daemon processes forming a group (the group module's support):
// started from one config with the "file" bootstrap, "name@group" dependencies resolved among
// the members, administered by dango-ctl, left at shutdown, stopped with `shutdown --group`.
// Short SWIM periods keep them fast; every daemon is killed and reaped by a guard if a test
// fails.

#include <algorithm>
#include <set>

#include "compose_test_util.hpp"
#include "dango/dango.hpp"
#include "dango/services/group/client.hpp"
#include "rpc/rpc_test_util.hpp"

namespace dango::compose {
namespace {

using namespace testing;
using rpc::testing::eventually;

// A group section for tests: probes every 200 ms (a ping waits 150 ms for its ack); `suspicion`
// bounds how long a silent member takes to be declared dead, and is long enough that a member
// slowed down by a loaded machine (or a sanitizer) is not.
nlohmann::json group_section(const std::string& file, std::chrono::milliseconds suspicion) {
  return {{"name", "store"},
          {"bootstrap", "file"},
          {"file", file},
          {"swim",
           {{"period_ms", 200},
            {"ping_timeout_ms", 150},
            {"suspicion_timeout_ms", suspicion.count()}}}};
}

// N daemons started at once from the same config file; each address once it serves.
class Deployment {
 public:
  Deployment(const TempDir& dir, const nlohmann::json& config, size_t n) {
    const std::string config_file = dir.file("deployment.json");
    write_file(config_file, config.dump(2));
    for (size_t i = 0; i < n; ++i) {
      address_files_.push_back(dir.file("member" + std::to_string(i) + ".address"));
      daemons_.push_back(std::make_unique<Program>(
          bin("dango-daemon"),
          std::vector<std::string>{"-c", config_file, "--address-file", address_files_.back(),
                                   "--module-path", module_dir()},
          dir));
    }
    for (size_t i = 0; i < n; ++i) {
      EXPECT_TRUE(eventually([&] { return std::filesystem::exists(address_files_[i]); }, 30s))
          << "member " << i << " never served; stderr:\n"
          << daemons_[i]->err();
      std::string address = read_file(address_files_[i]);
      while (!address.empty() && address.back() == '\n') address.pop_back();
      addresses_.push_back(address);
    }
  }
  const std::vector<std::string>& addresses() const { return addresses_; }
  Program& daemon(size_t i) { return *daemons_[i]; }
  size_t size() const { return daemons_.size(); }

 private:
  std::vector<std::string> address_files_;
  std::vector<std::string> addresses_;
  std::vector<std::unique_ptr<Program>> daemons_;
};

// The addresses the member at `address` has in its view (empty when it does not answer).
std::vector<std::string> view_of(Engine& client, const std::string& address) {
  try {
    const group::View view = group::Client{client}.open(address, 0, 2s);
    std::vector<std::string> members;
    for (const auto& m : view.membership().members) {
      members.push_back(m.address);
    }
    return members;
  } catch (const Error&) {
    return {};
  }
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// The members listed in the group file (empty while it is missing or being replaced).
std::vector<std::string> group_file_members(const std::string& file) {
  try {
    const auto view = nlohmann::json::parse(read_file(file));
    std::vector<std::string> members;
    for (const auto& m : view.at("members")) {
      members.push_back(m["address"]);
    }
    return sorted(members);
  } catch (const std::exception&) {
    return {};
  }
}

class GroupDeployment : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& program : {bin("dango-daemon"), bin("dango-ctl")}) {
      if (::access(program.c_str(), X_OK) != 0) GTEST_SKIP() << program << " is not built";
    }
  }
  TempDir dir_;
  Engine client_{"tcp"};
};

TEST_F(GroupDeployment, ThreeDaemonsFromOneConfigResolveNameAtGroupAndStopWithShutdownGroup) {
  const std::string group_file = dir_.file("store.group");
  // Every member serves a counter "c" and a relay to "c@group": the first member (in view
  // order) already serving "c" when the relay starts, possibly itself.
  const nlohmann::json config = {{"group", group_section(group_file, 5000ms)},
                                 {"providers",
                                  {{{"name", "c"}, {"type", "counter"}, {"provider_id", 1}},
                                   {{"name", "r"},
                                    {"type", "relay"},
                                    {"provider_id", 2},
                                    {"dependencies", {{"target", "c@group"}}}}}}};
  Deployment deployment(dir_, config, 3);
  ASSERT_EQ(deployment.addresses().size(), 3u);
  const auto all = sorted(deployment.addresses());
  ASSERT_TRUE(eventually([&] { return group_file_members(group_file) == all; }, 20s))
      << read_file(group_file);
  for (const auto& address : deployment.addresses()) {
    ASSERT_TRUE(eventually([&] { return sorted(view_of(client_, address)) == all; }, 20s))
        << address << " never saw the three members";
  }

  // dango-ctl query: the group section and the resolved address of "c@group".
  int64_t expected_total = 0;
  for (size_t i = 0; i < deployment.size(); ++i) {
    const std::string& address = deployment.addresses()[i];
    auto query = ctl(dir_, {"query", address});
    ASSERT_EQ(query.code, 0) << query.err;
    auto running = nlohmann::json::parse(query.out);
    EXPECT_EQ(running["group"]["name"], "store");
    EXPECT_EQ(running["group"]["address"], address);
    auto resolved = running["providers"][1]["resolved_dependencies"]["target"][0];
    EXPECT_EQ(resolved["spec"], "c@group");
    EXPECT_EQ(resolved["type"], "counter");
    EXPECT_EQ(resolved["provider_id"], 1);
    EXPECT_NE(std::find(all.begin(), all.end(), resolved["address"]), all.end()) << resolved;
    EXPECT_EQ(resolved["local"], resolved["address"] == address);
    auto list = ctl(dir_, {"list-providers", address});
    ASSERT_EQ(list.code, 0) << list.err;
    EXPECT_EQ(nlohmann::json::parse(list.out).size(), 2u) << list.out;
    // The relay adds to the counter it resolved, wherever it lives.
    const int64_t n = static_cast<int64_t>(i) + 1;
    client_.rpc<int64_t(int64_t)>("relay.add").on(client_.lookup(address)).with(2)(n);
    expected_total += n;
  }
  int64_t total = 0;
  for (const auto& address : deployment.addresses()) {
    total += client_.rpc<int64_t()>("counter.get").on(client_.lookup(address)).with(1)();
  }
  EXPECT_EQ(total, expected_total);

  // A provider added at run time depends on a name only one member serves: "only@group"
  // resolves to that member, across processes.
  const std::string owner = deployment.addresses()[0], user = deployment.addresses()[2];
  auto add_only = ctl(
      dir_, {"add-provider", owner, R"({"name": "only", "type": "counter", "provider_id": 5})"});
  ASSERT_EQ(add_only.code, 0) << add_only.err;
  auto add_relay = ctl(dir_, {"add-provider", user,
                              R"({"name": "r5", "type": "relay", "provider_id": 6,
                                  "dependencies": {"target": "only@group"}})"});
  ASSERT_EQ(add_relay.code, 0) << add_relay.err;
  auto resolved = nlohmann::json::parse(add_relay.out)["resolved_dependencies"]["target"][0];
  EXPECT_EQ(resolved["address"], owner);
  EXPECT_EQ(resolved["provider_id"], 5);
  EXPECT_EQ(resolved["local"], false);
  EXPECT_EQ(client_.rpc<int64_t(int64_t)>("relay.add").on(client_.lookup(user)).with(6)(42), 42);
  EXPECT_EQ(client_.rpc<int64_t()>("counter.get").on(client_.lookup(owner)).with(5)(), 42);

  // One command stops every member listed in the group file.
  auto shutdown = ctl(dir_, {"shutdown", "--group", group_file});
  EXPECT_EQ(shutdown.code, 0) << shutdown.err;
  for (size_t i = 0; i < deployment.size(); ++i) {
    EXPECT_EQ(deployment.daemon(i).wait_exit(), 0) << deployment.daemon(i).err();
  }
}

TEST_F(GroupDeployment, StoppedMemberLeavesTheGroupAtOnceInsteadOfBeingSuspected) {
  const std::string group_file = dir_.file("store.group");
  // A silent member would take 60 s to be declared dead: a view without it sooner means it left.
  const nlohmann::json config = {{"group", group_section(group_file, 60000ms)},
                                 {"providers", nlohmann::json::array()}};
  Deployment deployment(dir_, config, 3);
  ASSERT_EQ(deployment.addresses().size(), 3u);
  const auto all = sorted(deployment.addresses());
  for (const auto& address : deployment.addresses()) {
    ASSERT_TRUE(eventually([&] { return sorted(view_of(client_, address)) == all; }, 20s));
  }
  const std::string leaving = deployment.addresses()[1];
  auto shutdown = ctl(dir_, {"shutdown", leaving});
  EXPECT_EQ(shutdown.code, 0) << shutdown.err;
  EXPECT_EQ(deployment.daemon(1).wait_exit(), 0) << deployment.daemon(1).err();
  const auto rest = sorted({deployment.addresses()[0], deployment.addresses()[2]});
  for (const std::string& address : rest) {
    EXPECT_TRUE(eventually([&] { return sorted(view_of(client_, address)) == rest; }, 10s))
        << address << " still lists " << leaving;
  }
  EXPECT_TRUE(eventually([&] { return group_file_members(group_file) == rest; }, 10s))
      << read_file(group_file);
  // The group file now lists the two left: `shutdown --group` stops exactly them.
  auto stop_rest = ctl(dir_, {"shutdown", "--group", group_file});
  EXPECT_EQ(stop_rest.code, 0) << stop_rest.err;
  EXPECT_EQ(deployment.daemon(0).wait_exit(), 0) << deployment.daemon(0).err();
  EXPECT_EQ(deployment.daemon(2).wait_exit(), 0) << deployment.daemon(2).err();
}

TEST_F(GroupDeployment, ShutdownOfAGroupWhoseFileIsMissingNamesTheFile) {
  auto result = ctl(dir_, {"shutdown", "--group", dir_.file("nowhere.group")});
  EXPECT_EQ(result.code, 1);
  EXPECT_NE(result.err.find("nowhere.group"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace dango::compose
