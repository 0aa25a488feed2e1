// The test-only fault transport (fault+tcp): an engine on it is reached at its plain tcp
// address, and while dropping is on nothing gets in or out (calls time out), then everything
// works again. The group's multi-process tests use it to make a member go silent.

#include <gtest/gtest.h>

#include "dango/dango.hpp"
#include "dango/net/fault.hpp"

namespace dango {
namespace {

using namespace std::chrono_literals;

// Restores the process-wide switch even when a test fails.
struct DroppingGuard {
  ~DroppingGuard() { net::fault::set_dropping(false); }
};

TEST(FaultTransport, AdvertisesThePlainAddressAndDropsMessagesOnlyWhileSwitchedOn) {
  DroppingGuard guard;
  Engine server{"fault+tcp://127.0.0.1:0"};
  EXPECT_EQ(server.address().rfind("tcp://127.0.0.1:", 0), 0u) << server.address();
  server.define("sum", [](int a, int b) { return a + b; });
  Engine client{"tcp"};
  const auto sum = client.rpc<int(int, int)>("sum").on(client.lookup(server.address()));
  EXPECT_EQ(sum.timeout(5s)(1, 2), 3);

  net::fault::set_dropping(true);
  EXPECT_TRUE(net::fault::dropping());
  EXPECT_THROW(sum.timeout(200ms)(3, 4), TimeoutError);

  net::fault::set_dropping(false);
  EXPECT_EQ(sum.timeout(5s)(5, 6), 11);
}

TEST(FaultTransport, OutgoingCallsFromAFaultyEngineAreLostToo) {
  DroppingGuard guard;
  Engine server{"tcp://127.0.0.1:0"};
  server.define("sum", [](int a, int b) { return a + b; });
  Engine client{"fault+tcp://127.0.0.1:0"};
  const auto sum = client.rpc<int(int, int)>("sum").on(client.lookup(server.address()));
  EXPECT_EQ(sum.timeout(5s)(1, 1), 2);
  net::fault::set_dropping(true);
  EXPECT_THROW(sum.timeout(200ms)(1, 1), TimeoutError);
}

TEST(FaultTransport, AddressWithoutAnInnerSchemeIsANetworkError) {
  EXPECT_THROW(Engine{"fault+"}, NetworkError);
  EXPECT_THROW(Engine{"fault+nothing://x"}, NetworkError);
}

}  // namespace
}  // namespace dango
