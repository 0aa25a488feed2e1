// How the parameterised suites pick their transports (over_transports.hpp): every registered
// one that can listen here, restricted by DANGO_TEST_TRANSPORTS, with a reason for each one
// left out, and names that gtest accepts.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "over_transports.hpp"

namespace dango::rpc {
namespace {

using namespace testing;

// A probe for which "ofi+verbs" has no hardware and every other scheme works.
std::optional<std::string> no_verbs_here(const std::string& scheme) {
  if (scheme == "ofi+verbs") return std::string("no InfiniBand device");
  return std::nullopt;
}

std::vector<std::string> schemes_of(const std::vector<LeftOutTransport>& left_out) {
  std::vector<std::string> out;
  for (const auto& left : left_out) out.push_back(left.scheme);
  return out;
}

const std::vector<std::string> kRegistered = {"ofi+tcp", "ofi+verbs", "sm", "tcp"};

TEST(TransportSelection, EveryRegisteredTransportThatCanListenIsKeptInRegistryOrder) {
  TransportSelection s = select_transports(kRegistered, "", no_verbs_here);
  EXPECT_EQ(s.working, (std::vector<std::string>{"ofi+tcp", "sm", "tcp"}));
  ASSERT_EQ(s.left_out.size(), 1u);
  EXPECT_EQ(s.left_out[0].scheme, "ofi+verbs");
  EXPECT_NE(s.left_out[0].reason.find("no InfiniBand device"), std::string::npos);
}

TEST(TransportSelection, EnvironmentListRestrictsTheSetAndNamesWhatItLeftOut) {
  TransportSelection s = select_transports(kRegistered, " tcp, sm,ofi+verbs", no_verbs_here);
  EXPECT_EQ(s.working, (std::vector<std::string>{"sm", "tcp"}));
  EXPECT_EQ(schemes_of(s.left_out), (std::vector<std::string>{"ofi+tcp", "ofi+verbs"}));
}

TEST(TransportSelection, EnvironmentListNamingAnUnregisteredTransportSaysSo) {
  TransportSelection s = select_transports(kRegistered, "tcp,carrier-pigeon", no_verbs_here);
  EXPECT_EQ(s.working, std::vector<std::string>{"tcp"});
  ASSERT_FALSE(s.left_out.empty());
  EXPECT_EQ(s.left_out[0].scheme, "carrier-pigeon");
  EXPECT_NE(s.left_out[0].reason.find("not registered"), std::string::npos);
}

TEST(TransportSelection, TransportWhoseEngineCannotListenIsLeftOutWithTheError) {
  // A real probe: a scheme nobody registered cannot make an engine.
  auto why = cannot_listen_on("no-such-transport");
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("no-such-transport"), std::string::npos) << *why;
  // And every transport the suites run over can.
  for (const auto& scheme : working_transports()) EXPECT_EQ(cannot_listen_on(scheme), std::nullopt);
}

TEST(TransportSelection, TcpIsAlwaysAmongTheTransportsTheSuitesRunOver) {
  // Unless the environment restricts the set: tcp needs nothing but a loopback interface.
  if (const char* only = std::getenv("DANGO_TEST_TRANSPORTS"); only && *only) {
    GTEST_SKIP() << "DANGO_TEST_TRANSPORTS=" << only;
  }
  const auto& working = working_transports();
  EXPECT_NE(std::find(working.begin(), working.end(), "tcp"), working.end());
}

TEST(TransportSelection, SchemesBecomeValidTestNames) {
  EXPECT_EQ(test_name_of("tcp"), "tcp");
  EXPECT_EQ(test_name_of("ofi+tcp"), "ofi_tcp");
  EXPECT_EQ(test_name_of("ofi+verbs;ofi_rxm"), "ofi_verbs_ofi_rxm");
}

}  // namespace
}  // namespace dango::rpc
