// "name@group" dependencies and the "group" section, through the GroupSupport interface that
// the group component implements. A forked child registers a test GroupSupport (a fixed list
// of members) — registering it in this process would change what every other test sees — and
// runs a process whose relay depends on "c@group", served by a real dango-daemon.

#include <sys/wait.h>
#include <unistd.h>

#include "compose_test_util.hpp"
#include "dango/common/config.hpp"
#include "dango/compose/group_support.hpp"
#include "dango/compose/process.hpp"
#include "dango/dango.hpp"

namespace dango::compose {
namespace {

using namespace testing;

// Members are the addresses listed in the section's "members" (this process's own address is
// added at join); leave() writes "left" to the section's "journal".
class ListedGroup : public GroupMembership {
 public:
  ListedGroup(std::vector<std::string> members, nlohmann::json section)
      : members_(std::move(members)), section_(std::move(section)) {}
  std::vector<std::string> members() const override { return members_; }
  nlohmann::json config() const override { return section_; }
  void leave() override { write_file(section_["journal"].get<std::string>(), "left\n"); }

 private:
  std::vector<std::string> members_;
  nlohmann::json section_;
};

class ListedGroupSupport : public GroupSupport {
 public:
  void validate(const nlohmann::json& section, std::string_view path) const override {
    std::vector<std::string> members;
    std::string journal;
    dango::config::ConfigReader reader(section, std::string(path));
    reader.require("members", members);
    reader.require("journal", journal);
    reader.finish();
  }
  std::unique_ptr<GroupMembership> join(rpc::Engine& engine, const nlohmann::json& section,
                                        std::string_view) const override {
    auto members = section["members"].get<std::vector<std::string>>();
    members.push_back(engine.address());
    return std::make_unique<ListedGroup>(members, section);
  }
  std::vector<std::string> read_group_file(const std::string& file) const override {
    return {read_file(file)};
  }
};

// The child's checks; an empty string when all held, else what failed.
std::string run_member(const std::string& storage, const std::string& journal) {
  register_group_support(std::make_unique<ListedGroupSupport>());
  nlohmann::json config = {
      {"group", {{"members", {"tcp://127.0.0.1:1", storage}}, {"journal", journal}}},
      {"providers",
       {{{"name", "r"}, {"type", "relay"}, {"dependencies", {{"target", "c@group"}}}}}}};
  Process process{ProcessConfig::from_json(config, {module_dir()})};
  auto resolved = process.query()["providers"][0]["resolved_dependencies"]["target"][0];
  if (resolved["address"] != storage) return "resolved to " + resolved.dump();
  if (process.query()["group"]["journal"] != journal) return "query shows no group";
  {
    Engine client{"tcp"};
    auto add = client.rpc<int64_t(int64_t)>("relay.add");
    if (add.on(client.lookup(process.address())).with(1)(7) != 7) return "relay.add != 7";
  }
  process.stop();
  if (read_file(journal) != "left\n") return "the group was not left";
  return "";
}

TEST(GroupDependency, NameAtGroupResolvesToTheFirstMemberServingThatName) {
  if (::access(bin("dango-daemon").c_str(), X_OK) != 0) GTEST_SKIP() << "dango-daemon not built";
  TempDir dir;
  Daemon storage(dir, "storage", {{"providers", {{{"name", "c"}, {"type", "counter"}}}}});
  const std::string journal = dir.file("journal"), failure = dir.file("failure");
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::string what;
    try {
      what = run_member(storage.address(), journal);
    } catch (const std::exception& e) {
      what = e.what();
    }
    write_file(failure, what);
    std::_Exit(what.empty() ? 0 : 1);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_file(failure);
  Engine client{"tcp"};
  EXPECT_EQ(client.rpc<int64_t()>("counter.get").on(client.lookup(storage.address())).with(1)(), 7);
}

}  // namespace
}  // namespace dango::compose
