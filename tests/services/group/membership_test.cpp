// Views and the group file: JSON round trip, order and ranks, atomic rewrite, errors that name
// the file and the key.

#include "dango/services/group/membership.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "dango/common/error.hpp"
#include "rpc/rpc_test_util.hpp"

namespace dango::group {
namespace {

Membership three_members() {
  return Membership::from_json(nlohmann::json::parse(R"({
    "name": "store", "version": 7,
    "members": [{"address": "tcp://127.0.0.1:9003", "provider_id": 2, "incarnation": 1},
                {"address": "tcp://127.0.0.1:9001"},
                {"address": "tcp://127.0.0.1:9002", "provider_id": 2}]})"));
}

TEST(GroupMembership, MembersAreOrderedByAddressAndRankedByPosition) {
  const Membership view = three_members();
  ASSERT_EQ(view.size(), 3u);
  EXPECT_EQ(view.name, "store");
  EXPECT_EQ(view.version, 7u);
  for (size_t i = 0; i < view.size(); ++i) {
    EXPECT_EQ(view.members[i].rank, i);
    EXPECT_EQ(view.members[i].address, "tcp://127.0.0.1:900" + std::to_string(i + 1));
  }
  EXPECT_EQ(view.find("tcp://127.0.0.1:9003")->incarnation, 1u);
  EXPECT_EQ(view.find("tcp://127.0.0.1:9003")->provider_id, 2);
  EXPECT_EQ(view.find("tcp://127.0.0.1:9009"), nullptr);
}

TEST(GroupMembership, JsonRoundTripKeepsEverything) {
  const Membership view = three_members();
  EXPECT_EQ(Membership::from_json(view.to_json()).members, view.members);
  EXPECT_EQ(Membership::from_json(view.to_json()).version, view.version);
}

TEST(GroupMembership, GroupFileIsWrittenAtomicallyAndReadBack) {
  rpc::testing::TempDir dir;
  const auto path = dir.path() / "store.group";
  Membership view = three_members();
  view.save_file(path);
  view.version = 8;
  view.members.pop_back();
  view.save_file(path);  // replaces, leaves no temporary behind
  const Membership read = Membership::load_file(path);
  EXPECT_EQ(read.version, 8u);
  EXPECT_EQ(read.members, view.members);
  size_t files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path()))
    ++files;
  EXPECT_EQ(files, 1u);
}

void expect_config_error(const std::string& text, const std::string& fragment) {
  try {
    Membership::from_json(nlohmann::json::parse(text), "group_file");
    FAIL() << "no error for " << text;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(GroupMembership, MalformedViewsAreErrorsNamingTheKey) {
  expect_config_error(R"({"members": []})", "group_file.name: missing required key");
  expect_config_error(R"({"name": "g"})", "group_file.members: missing required key");
  expect_config_error(R"({"name": "g", "members": [{"provider_id": 1}]})",
                      "group_file.members[0].address: missing required key");
  expect_config_error(R"({"name": "g", "members": [{"address": "a", "rank": 1}]})",
                      "group_file.members[0].rank: unknown key");
  expect_config_error(R"({"name": "g", "members": [{"address": "a"}, {"address": "a"}]})",
                      "group_file.members[1]: duplicate member \"a\"");
  expect_config_error(R"({"name": "g", "version": -1, "members": []})",
                      "group_file.version: expected an unsigned integer");
}

TEST(GroupMembership, UnreadableGroupFileIsAnErrorNamingTheFile) {
  rpc::testing::TempDir dir;
  const auto missing = dir.path() / "missing.group";
  EXPECT_THROW(Membership::load_file(missing), ConfigError);
  const auto garbage = dir.path() / "garbage.group";
  std::ofstream(garbage) << "{ not json";
  try {
    Membership::load_file(garbage);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(garbage.string()), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace dango::group
