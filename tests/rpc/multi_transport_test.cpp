// One engine listening on two transports at once (EngineOptions::extra_addresses), for each
// ordered pair of distinct working transports in the binary: clients on either transport call it
// and pull its exposed memory, its idle progress loop wakes on a message from either, and it
// knows both of its addresses as its own. Skipped while fewer than two transports work.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dango/dango.hpp"
#include "over_transports.hpp"
#include "rpc_test_util.hpp"

namespace dango::rpc {
namespace {

using namespace testing;

using TransportPair = std::pair<std::string, std::string>;

// Every ordered pair of distinct working transports; when there is none, one empty pair whose
// tests skip, saying why (so the suite shows up as skipped rather than vanishing).
std::vector<TransportPair> ordered_pairs() {
  const std::vector<std::string>& working = working_transports();
  std::vector<TransportPair> pairs;
  for (const auto& a : working) {
    for (const auto& b : working) {
      if (a != b) pairs.emplace_back(a, b);
    }
  }
  if (pairs.empty()) pairs.emplace_back();
  return pairs;
}

uint64_t byte_sum(std::span<const std::byte> bytes) {
  uint64_t sum = 0;
  for (std::byte b : bytes) sum += static_cast<uint8_t>(b);
  return sum;
}

class RpcMultiTransport : public ::testing::TestWithParam<TransportPair> {
 protected:
  void SetUp() override {
    if (first().empty()) {
      std::string have;
      for (const auto& scheme : working_transports()) have += " " + scheme;
      GTEST_SKIP() << "needs two working transports; this binary has:"
                   << (have.empty() ? " none" : have);
    }
  }
  // The transport of the engine's main address, and that of its extra address.
  const std::string& first() const { return GetParam().first; }
  const std::string& second() const { return GetParam().second; }
  // A server listening on both transports' loopback addresses, the first one first.
  EngineOptions listening_on_both(EngineOptions options = {}) const {
    options.address = net::loopback_address(first());
    options.extra_addresses = {net::loopback_address(second())};
    return options;
  }
  // The server's address on `scheme`.
  static std::string address_on(const Engine& server, const std::string& scheme) {
    for (const auto& address : server.addresses()) {
      if (net::split_address(address).first == scheme) return address;
    }
    ADD_FAILURE() << "the server lists no address on " << scheme;
    return {};
  }
};

TEST_P(RpcMultiTransport, AddressesListsOneAddressPerTransportMainOneFirst) {
  Engine server{listening_on_both()};
  ASSERT_EQ(server.addresses().size(), 2u);
  EXPECT_EQ(server.addresses()[0], server.address());
  EXPECT_EQ(server.addresses()[0].rfind(first() + "://", 0), 0u) << server.addresses()[0];
  EXPECT_EQ(server.addresses()[1].rfind(second() + "://", 0), 0u) << server.addresses()[1];
}

TEST_P(RpcMultiTransport, LookupOfEitherOwnAddressIsTheSelfEndpoint) {
  Engine server{listening_on_both()};
  server.define("twice", [](int x) { return 2 * x; });
  for (const auto& address : server.addresses()) {
    Endpoint ep = server.lookup(address);
    EXPECT_TRUE(ep.is_self()) << address;
    EXPECT_EQ(server.rpc<int(int)>("twice").on(ep)(21), 42) << address;
  }
}

TEST_P(RpcMultiTransport, ClientOnEachTransportCallsTheServer) {
  Engine server{listening_on_both()};
  server.define("sum", [](int64_t a, int64_t b) { return a + b; });
  server.define("echo", [](const std::string& s) { return s; });
  Engine client_a{first()};
  Engine client_b{second()};
  Endpoint via_a = client_a.lookup(address_on(server, first()));
  Endpoint via_b = client_b.lookup(address_on(server, second()));
  EXPECT_EQ(client_a.rpc<int64_t(int64_t, int64_t)>("sum").on(via_a)(40, 2), 42);
  EXPECT_EQ(client_b.rpc<int64_t(int64_t, int64_t)>("sum").on(via_b)(-1, 1), 0);
  // Calls in flight on both transports at once each get their own result.
  auto echo_a = client_a.rpc<std::string(std::string)>("echo");
  auto echo_b = client_b.rpc<std::string(std::string)>("echo");
  std::vector<Pending<std::string>> pending_a, pending_b;
  for (int i = 0; i < 16; ++i) {
    pending_a.push_back(echo_a.on(via_a).async("a" + std::to_string(i)));
    pending_b.push_back(echo_b.on(via_b).async("b" + std::to_string(i)));
  }
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(pending_a[i].wait(), "a" + std::to_string(i));
    EXPECT_EQ(pending_b[i].wait(), "b" + std::to_string(i));
  }
}

TEST_P(RpcMultiTransport, OneClientEngineReachesTheServerOverEitherAddress) {
  Engine server{listening_on_both()};
  server.define("sum", [](int64_t a, int64_t b) { return a + b; });
  // Made for the first transport; the second is added when an address names it.
  Engine client{first()};
  auto sum = client.rpc<int64_t(int64_t, int64_t)>("sum");
  EXPECT_EQ(sum.on(client.lookup(address_on(server, first())))(1, 2), 3);
  EXPECT_EQ(sum.on(client.lookup(address_on(server, second())))(3, 4), 7);
  EXPECT_EQ(sum.on(client.lookup(address_on(server, first())))(5, 6), 11);
}

TEST_P(RpcMultiTransport, ServerMemoryIsPulledAndPushedByClientsOnEitherTransport) {
  Engine server{listening_on_both()};
  std::vector<std::byte> plain = pattern((1 << 20) + 5, 1);
  Bulk plain_bulk = server.expose(plain, Access::kReadWrite);
  ExposedMemory allocated = server.allocate_exposed(300000);
  const auto seed = pattern(allocated.size(), 2);
  std::copy(seed.begin(), seed.end(), allocated.data().begin());
  server.define("plain", [&] { return plain_bulk; });
  server.define("allocated", [&] { return allocated.bulk(); });

  Engine client_a{first()};
  Engine client_b{second()};
  uint8_t fresh_seed = 10;
  for (Engine* client : {&client_a, &client_b}) {
    const std::string scheme(client->address());
    SCOPED_TRACE("client on " + scheme);
    Endpoint ep = client->lookup(address_on(server, scheme));
    for (const char* which : {"plain", "allocated"}) {
      SCOPED_TRACE(which);
      Bulk remote = client->rpc<Bulk()>(which).on(ep)();
      EXPECT_EQ(remote.owner(), server.address());
      std::span<std::byte> memory =
          which == std::string("plain") ? std::span<std::byte>(plain) : allocated.data();
      ASSERT_EQ(remote.size(), memory.size());
      std::vector<std::byte> mine(memory.size());
      Bulk local = client->expose(mine, Access::kReadWrite);
      client->pull(ep, remote, 0, local, 0, mine.size());
      EXPECT_TRUE(std::equal(mine.begin(), mine.end(), memory.begin()));
      const auto fresh = pattern(mine.size(), fresh_seed++);
      std::copy(fresh.begin(), fresh.end(), mine.begin());
      client->push(ep, remote, 0, local, 0, mine.size());
      EXPECT_TRUE(std::equal(fresh.begin(), fresh.end(), memory.begin()));
    }
  }
}

TEST_P(RpcMultiTransport, ServerPullsTheMemoryOfClientsOnEitherTransport) {
  Engine server{listening_on_both()};
  server.define("sum_of_bytes", [](const Request& request, const Bulk& remote) {
    Engine& e = request.engine();
    std::vector<std::byte> buffer(remote.size());
    Bulk local = e.expose(buffer, Access::kWriteOnly);
    e.pull(request.source(), remote, 0, local, 0, buffer.size());
    return byte_sum(buffer);
  });
  Engine client_a{first()};
  Engine client_b{second()};
  uint8_t seed = 20;
  for (Engine* client : {&client_a, &client_b}) {
    const std::string scheme(client->address());
    SCOPED_TRACE("client on " + scheme);
    std::vector<std::byte> data = pattern(200003, seed++);
    Bulk bulk = client->expose(data, Access::kReadOnly);
    Endpoint ep = client->lookup(address_on(server, scheme));
    EXPECT_EQ(client->rpc<uint64_t(Bulk)>("sum_of_bytes").on(ep)(bulk), byte_sum(data));
  }
}

TEST_P(RpcMultiTransport, IdleServerWakesOnAMessageFromEitherTransport) {
  // The server's progress loop runs on a stream of its own and, after 1 ms without activity,
  // sleeps in the kernel on both transports at once; each call below arrives well after that.
  EngineOptions options = server_on_own_thread("");
  options.progress_poll = std::chrono::microseconds(1000);
  Engine server{listening_on_both(std::move(options))};
  server.define("sum", [](int64_t a, int64_t b) { return a + b; });
  Engine client_a{first()};
  Engine client_b{second()};
  auto sum_a = client_a.rpc<int64_t(int64_t, int64_t)>("sum");
  auto sum_b = client_b.rpc<int64_t(int64_t, int64_t)>("sum");
  Endpoint via_a = client_a.lookup(address_on(server, first()));
  Endpoint via_b = client_b.lookup(address_on(server, second()));
  const auto idle = server.options().progress_poll + std::chrono::milliseconds(50);
  for (int round = 0; round < 2; ++round) {
    // The timeout is a guard: a server that slept through the message fails the call, not the
    // whole program.
    std::this_thread::sleep_for(idle);
    EXPECT_EQ(sum_b.on(via_b).timeout(10s)(round, 1), round + 1) << "round " << round;
    std::this_thread::sleep_for(idle);
    EXPECT_EQ(sum_a.on(via_a).timeout(10s)(round, 2), round + 2) << "round " << round;
  }
}

INSTANTIATE_TEST_SUITE_P(Transports, RpcMultiTransport, ::testing::ValuesIn(ordered_pairs()),
                         [](const ::testing::TestParamInfo<TransportPair>& info) {
                           if (info.param.first.empty()) return std::string("needs_two_transports");
                           return test_name_of(info.param.first) + "_and_" +
                                  test_name_of(info.param.second);
                         });

}  // namespace
}  // namespace dango::rpc
