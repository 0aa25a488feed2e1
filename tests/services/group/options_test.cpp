// Group options from JSON: defaults, the effective configuration, and invalid configurations
// (data-driven: input -> error message naming the key).

#include "dango/services/group/options.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "dango/common/error.hpp"

namespace dango::group {
namespace {

using namespace std::chrono_literals;

TEST(GroupOptions, DefaultsSuitALoadedNodeAndAreReportedInTheEffectiveConfig) {
  const GroupOptions options =
      GroupOptions::from_json(nlohmann::json::parse(R"({"name": "store", "file": "s.group"})"));
  EXPECT_EQ(options.bootstrap, "file");
  EXPECT_EQ(options.swim.period, 1000ms);
  EXPECT_EQ(options.swim.ping_timeout, 400ms);
  EXPECT_EQ(options.swim.indirect_pings, 3u);
  EXPECT_EQ(options.swim.suspicion_timeout, 6000ms);
  const nlohmann::json effective = options.to_json();
  EXPECT_EQ(effective["swim"]["period_ms"], 1000);
  EXPECT_EQ(GroupOptions::from_json(effective).to_json(), effective);
}

TEST(GroupOptions, SwimSettingsAreRead) {
  const GroupOptions options = GroupOptions::from_json(nlohmann::json::parse(R"({
    "name": "g", "bootstrap": "join", "join": "tcp://127.0.0.1:7000", "provider_id": 3,
    "swim": {"period_ms": 50, "ping_timeout_ms": 20, "indirect_pings": 5,
             "suspicion_timeout_ms": 400, "retransmit_multiplier": 2, "max_piggyback": 4}})"));
  EXPECT_EQ(options.provider_id, 3);
  EXPECT_EQ(options.swim.period, 50ms);
  EXPECT_EQ(options.swim.ping_timeout, 20ms);
  EXPECT_EQ(options.swim.indirect_pings, 5u);
  EXPECT_EQ(options.swim.suspicion_timeout, 400ms);
  EXPECT_EQ(options.swim.retransmit_multiplier, 2u);
  EXPECT_EQ(options.swim.max_piggyback, 4u);
}

struct InvalidCase {
  const char* name;  // names the test case
  const char* json;
  const char* error;
};

void PrintTo(const InvalidCase& c, std::ostream* os) { *os << c.name; }

class GroupOptionsInvalid : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(GroupOptionsInvalid, IsAConfigErrorNamingTheKey) {
  try {
    GroupOptions::from_json(nlohmann::json::parse(GetParam().json));
    FAIL() << "accepted " << GetParam().json;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(GetParam().error), std::string::npos)
        << "got: " << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, GroupOptionsInvalid,
    ::testing::Values(
        InvalidCase{"MissingName", R"({"bootstrap": "self"})", "group.name: missing required key"},
        // The list goes on with "mpi" and "pmix" when dango was built with MPI and PMIx.
        InvalidCase{"UnknownBootstrap", R"({"name": "g", "bootstrap": "gossip"})",
                    "group.bootstrap: unknown bootstrap \"gossip\" (expected one of: file, join, "},
        InvalidCase{"FileBootstrapWithoutFile", R"({"name": "g"})",
                    "group.file: required by the \"file\" bootstrap"},
        InvalidCase{"JoinBootstrapWithoutAddress", R"({"name": "g", "bootstrap": "join"})",
                    "group.join: required by the \"join\" bootstrap"},
        InvalidCase{"ViewBootstrapWithoutList", R"({"name": "g", "bootstrap": "view"})",
                    "group.view: required by the \"view\" bootstrap"},
        InvalidCase{"DuplicateAddressInView",
                    R"({"name": "g", "bootstrap": "view", "view": ["a", "b", "a"]})",
                    "group.view[0]: duplicate address \"a\""},
        InvalidCase{"UnknownKey", R"({"name": "g", "bootstrap": "self", "colour": 1})",
                    "group.colour: unknown key"},
        InvalidCase{"UnknownSwimKey",
                    R"({"name": "g", "bootstrap": "self", "swim": {"period": 1}})",
                    "group.swim.period: unknown key"},
        InvalidCase{
            "PingTimeoutNotBelowPeriod",
            R"({"name": "g", "bootstrap": "self", "swim": {"period_ms": 100, "ping_timeout_ms": 100}})",
            "group.swim.ping_timeout_ms: must be positive and below period_ms (100)"},
        InvalidCase{"SuspicionTimeoutBelowPeriod",
                    R"({"name": "g", "bootstrap": "self", "swim": {"suspicion_timeout_ms": 10}})",
                    "group.swim.suspicion_timeout_ms: must be at least period_ms"},
        InvalidCase{"WrongType",
                    R"({"name": "g", "bootstrap": "self", "swim": {"indirect_pings": "3"}})",
                    "group.swim.indirect_pings: expected an unsigned integer, got string"},
        InvalidCase{"NegativeProviderId",
                    R"({"name": "g", "bootstrap": "self", "provider_id": -2})",
                    "group.provider_id: expected an unsigned integer"}),
    [](const ::testing::TestParamInfo<InvalidCase>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace dango::group
