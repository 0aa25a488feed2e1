// Real processes: the test fork/execs build/bin/dango-test-server listening on each transport of
// the binary in turn, calls it over that transport (plain values, strings, bulk transfers,
// errors), shuts it down by RPC, drives it from several client engines and client processes at
// once, and kills a client process in the middle of a call. Every server is killed and reaped by
// an RAII guard, even when a test fails.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "dango/dango.hpp"
#include "over_transports.hpp"
#include "rpc_test_util.hpp"

namespace dango::rpc {
namespace {

using namespace testing;

using dango::testing::ChildPid;

class RpcTwoProcess : public OverTransports {
 protected:
  void SetUp() override {
    if (::access(test_server_path().c_str(), X_OK) != 0) {
      GTEST_SKIP() << test_server_path() << " is not built (target dango-test-server)";
    }
  }
  TempDir dir_;
};

TEST_P(RpcTwoProcess, ClientCallsSumEchoAndBulkThenShutsTheServerDown) {
  TestServer server(dir_.path(), loopback());
  ASSERT_FALSE(server.address.empty());
  // The concrete address the server listens on, of the transport asked for.
  EXPECT_EQ(server.address.rfind(transport() + "://", 0), 0u) << server.address;
  EXPECT_NE(server.address, loopback());
  {
    Engine client{transport()};
    Endpoint ep = client.lookup(server.address);
    EXPECT_EQ(client.rpc<int32_t()>("pid").on(ep)(), server.process.pid());
    EXPECT_EQ(client.rpc<int64_t(int64_t, int64_t)>("sum").on(ep)(40, 2), 42);
    EXPECT_EQ(client.rpc<int64_t(int64_t, int64_t)>("sum").on(ep)(-5, int64_t{1} << 40),
              (int64_t{1} << 40) - 5);
    auto echo = client.rpc<std::string(std::string)>("echo");
    EXPECT_EQ(echo.on(ep)("hello, process"), "hello, process");
    const std::string big(3 << 20, 'z');
    EXPECT_EQ(echo.on(ep)(big), big);

    std::vector<std::byte> data = pattern((4 << 20) + 3, 42);
    uint64_t expected_sum = 0;
    std::vector<std::byte> expected = data;
    for (std::byte& b : expected) {
      expected_sum += static_cast<uint8_t>(b);
      b ^= std::byte{0x5a};
    }
    Bulk bulk = client.expose(data, Access::kReadWrite);
    EXPECT_EQ(client.rpc<uint64_t(Bulk, uint8_t)>("bulk_xor").on(ep)(bulk, 0x5a), expected_sum);
    EXPECT_TRUE(data == expected);

    try {
      client.rpc<void(std::string)>("fail").on(ep)("failure from the test");
      FAIL() << "expected RemoteError";
    } catch (const RemoteError& e) {
      EXPECT_NE(std::string(e.what()).find("failure from the test"), std::string::npos);
    }
    EXPECT_THROW(client.rpc<uint32_t(uint32_t)>("sleep_ms").on(ep).timeout(20ms)(500),
                 TimeoutError);
    EXPECT_EQ(client.rpc<uint32_t(uint32_t)>("sleep_ms").on(ep)(1), 1u);

    client.rpc<void()>("shutdown").on(ep).timeout(20s)();
  }
  auto status = server.process.wait_exit(20s);
  ASSERT_TRUE(status.has_value()) << "the server did not exit after shutdown";
  ASSERT_TRUE(WIFEXITED(*status)) << "status " << *status;
  EXPECT_EQ(WEXITSTATUS(*status), 0);
}

TEST_P(RpcTwoProcess, EightClientEnginesInThisProcessCallConcurrently) {
  TestServer server(dir_.path(), loopback());
  ASSERT_FALSE(server.address.empty());
  constexpr int kClients = 8;
  constexpr int kCalls = 50;
  std::atomic<int> correct{0};
  std::vector<std::string> errors(kClients);
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      try {
        Engine client{transport()};  // each thread its own engine (and runtime)
        Endpoint ep = client.lookup(server.address);
        auto sum = client.rpc<int64_t(int64_t, int64_t)>("sum");
        auto echo = client.rpc<std::string(std::string)>("echo");
        for (int i = 0; i < kCalls; ++i) {
          bool ok = sum.on(ep).timeout(20s)(c, i) == c + i;
          const std::string text = std::to_string(c) + ":" + std::to_string(i);
          ok = ok && echo.on(ep).timeout(20s)(text) == text;
          if (ok) ++correct;
        }
        std::vector<std::byte> data = pattern(65536 + c, static_cast<uint8_t>(c));
        Bulk bulk = client.expose(data, Access::kReadWrite);
        client.rpc<uint64_t(Bulk, uint8_t)>("bulk_xor").on(ep).timeout(20s)(bulk, 0xff);
        auto expected = pattern(65536 + c, static_cast<uint8_t>(c));
        for (std::byte& b : expected) b ^= std::byte{0xff};
        if (data != expected) errors[c] = "bulk_xor result differs";
      } catch (const std::exception& e) {
        errors[c] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int c = 0; c < kClients; ++c) EXPECT_EQ(errors[c], "") << "client " << c;
  EXPECT_EQ(correct.load(), kClients * kCalls);
}

TEST_P(RpcTwoProcess, FourForkedClientProcessesCallConcurrently) {
  TestServer server(dir_.path(), loopback());
  ASSERT_FALSE(server.address.empty());
  // Each child builds its own engine after the fork (the parent's runtime threads do not exist
  // there) and reports through its exit code.
  std::vector<ChildPid> children;
  for (int c = 0; c < 4; ++c) {
    children.push_back(ChildPid::fork([&] {
      int code = 0;
      try {
        Engine client{transport()};
        Endpoint ep = client.lookup(server.address);
        auto sum = client.rpc<int64_t(int64_t, int64_t)>("sum");
        for (int i = 0; i < 100; ++i) {
          if (sum.on(ep).timeout(20s)(c * 1000, i) != c * 1000 + i) code = 2;
        }
      } catch (...) {
        code = 3;
      }
      return code;
    }));
  }
  for (ChildPid& child : children) {
    const pid_t pid = child.pid();
    // Bounded: a child that hangs is killed (by its guard), and the test fails.
    const auto status = child.wait_for(30s);
    if (!status) {
      ADD_FAILURE() << "client process " << pid << " hung";
      continue;
    }
    ASSERT_TRUE(WIFEXITED(*status));
    EXPECT_EQ(WEXITSTATUS(*status), 0) << "client process " << pid;
  }
  // The server survived them all.
  Engine client{transport()};
  EXPECT_EQ(client.rpc<int64_t(int64_t, int64_t)>("sum").on(client.lookup(server.address))(1, 1),
            2);
}

TEST_P(RpcTwoProcess, ClientProcessKilledWhileItsCallIsPendingLeavesTheServerServing) {
  TestServer server(dir_.path(), loopback());
  ASSERT_FALSE(server.address.empty());
  // The child connects, leaves a slow call pending and dies by SIGKILL: no goodbye on any
  // transport, and the server's reply goes to a process that no longer exists.
  ChildPid child = ChildPid::fork([&] {
    int code = 0;
    try {
      Engine client{transport()};
      Endpoint ep = client.lookup(server.address);
      if (client.rpc<int32_t()>("pid").on(ep).timeout(20s)() <= 0) code = 2;
      auto pending = client.rpc<uint32_t(uint32_t)>("sleep_ms").on(ep).async(300);
      std::this_thread::sleep_for(50ms);  // the request has left
      ::kill(::getpid(), SIGKILL);
    } catch (...) {
      code = 3;
    }
    return code;
  });
  const auto status = child.wait();
  ASSERT_TRUE(status.has_value());
  ASSERT_TRUE(WIFSIGNALED(*status)) << "the client process exited with status " << *status;
  Engine client{transport()};
  Endpoint ep = client.lookup(server.address);
  auto sum = client.rpc<int64_t(int64_t, int64_t)>("sum");
  EXPECT_EQ(sum.on(ep).timeout(20s)(1, 2), 3);
  // Outlasts the dead client's call, whose reply the server has then tried to send.
  EXPECT_EQ(client.rpc<uint32_t(uint32_t)>("sleep_ms").on(ep).timeout(20s)(350), 350u);
  EXPECT_EQ(sum.on(ep).timeout(20s)(3, 4), 7);
}

TEST_P(RpcTwoProcess, ServerWritesItsAddressToStdoutWithoutAddressFile) {
  // Run it with stdout into a pipe and read the first line.
  const std::string address = loopback();
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ChildPid server = ChildPid::exec(test_server_path(), {"--address", address}, [&] {
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
  });
  ::close(fds[1]);
  std::string line;
  char ch;
  while (::read(fds[0], &ch, 1) == 1 && ch != '\n') line += ch;
  ::close(fds[0]);
  ASSERT_FALSE(line.empty()) << "dango-test-server --address " << address << " printed no address";
  EXPECT_EQ(line.rfind(transport() + "://", 0), 0u) << line;
  Engine client{transport()};
  EXPECT_EQ(client.rpc<std::string(std::string)>("echo").on(client.lookup(line))("x"), "x");
}

DANGO_INSTANTIATE_OVER_TRANSPORTS(RpcTwoProcess);

}  // namespace
}  // namespace dango::rpc
