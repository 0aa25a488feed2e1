// Finalizing engines: pending calls fail with a clear error instead of hanging, finalize is
// idempotent, callbacks run last-registered first, finalize from a handler releases
// wait_for_finalize(), and a server that finalizes or dies fails its callers' calls; over every
// transport in the binary.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "dango/dango.hpp"
#include "over_transports.hpp"
#include "rpc_test_util.hpp"

namespace dango::rpc {
namespace {

using namespace testing;

class RpcFinalize : public OverTransports {};

void define_sleep(Engine& engine) {
  engine.define("sleep_ms", [](int ms) {
    thread::this_ult::sleep_for(std::chrono::milliseconds(ms));
    return ms;
  });
}

TEST_P(RpcFinalize, FinalizeIsIdempotent) {
  Engine engine{loopback()};
  EXPECT_FALSE(engine.finalized());
  engine.finalize();
  EXPECT_TRUE(engine.finalized());
  EXPECT_NO_THROW(engine.finalize());
  EXPECT_NO_THROW(engine.finalize());
  EXPECT_TRUE(engine.finalized());
}  // and the destructor finalizes once more

TEST_P(RpcFinalize, CallbacksRunInReverseOrderOfRegistration) {
  std::vector<int> order;
  {
    Engine engine{loopback()};
    for (int i = 1; i <= 4; ++i) engine.on_finalize([&order, i] { order.push_back(i); });
    engine.finalize();
    EXPECT_EQ(order, (std::vector<int>{4, 3, 2, 1}));
    engine.finalize();
  }
  EXPECT_EQ(order, (std::vector<int>{4, 3, 2, 1})) << "callbacks ran more than once";
}

TEST_P(RpcFinalize, ThrowingCallbackDoesNotStopTheOthers) {
  std::vector<int> order;
  Engine engine{loopback()};
  engine.on_finalize([&order] { order.push_back(1); });
  engine.on_finalize([] { throw std::runtime_error("callback failure"); });
  engine.on_finalize([&order] { order.push_back(3); });
  EXPECT_NO_THROW(engine.finalize());
  EXPECT_EQ(order, (std::vector<int>{3, 1}));
}

TEST_P(RpcFinalize, DestructorRunsTheCallbacks) {
  int ran = 0;
  {
    Engine engine{transport()};
    engine.on_finalize([&ran] { ++ran; });
  }
  EXPECT_EQ(ran, 1);
}

TEST_P(RpcFinalize, CallFromAFinalizedEngineFailsWithShutdownError) {
  ServerAndClient sc{transport()};
  sc.server.define("sum", [](int a, int b) { return a + b; });
  auto sum = sc.client.rpc<int(int, int)>("sum");
  EXPECT_EQ(sum.on(sc.endpoint)(1, 2), 3);
  sc.client.finalize();
  try {
    sum.on(sc.endpoint)(1, 2);
    FAIL() << "expected ShutdownError";
  } catch (const ShutdownError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("sum"), std::string::npos) << what;
    EXPECT_NE(what.find("finalized"), std::string::npos) << what;
  }
  EXPECT_THROW(sum.on(sc.endpoint).async(1, 2), ShutdownError);
  EXPECT_THROW(sum.on(sc.endpoint).notify(1, 2), ShutdownError);
}

TEST_P(RpcFinalize, PendingCallsFailWithShutdownErrorWhenTheCallerFinalizes) {
  ServerAndClient sc{transport()};
  define_sleep(sc.server);
  auto sleep_ms = sc.client.rpc<int(int)>("sleep_ms");
  {
    auto first = sleep_ms.on(sc.endpoint).async(3000);
    auto second = sleep_ms.on(sc.endpoint).async(3000);
    sc.client.finalize();
    try {
      first.wait();
      FAIL() << "expected ShutdownError";
    } catch (const ShutdownError& e) {
      EXPECT_NE(std::string(e.what()).find("sleep_ms"), std::string::npos) << e.what();
    }
    EXPECT_THROW(second.wait(), ShutdownError);
  }
  // The server is unaffected; its sleeping handlers are cut short when it finalizes.
  sc.server.finalize();
}

TEST_P(RpcFinalize, FinalizeFromAHandlerReturnsTheThreadInWaitForFinalize) {
  Engine server{loopback()};
  std::atomic<bool> callback_ran{false};
  server.on_finalize([&] { callback_ran = true; });
  server.define("shutdown", [](const Request& request) { request.engine().finalize(); });
  const std::string address = server.address();
  std::atomic<bool> call_returned{false};
  std::string client_error;
  std::thread client_thread([&] {
    try {
      Engine client{transport()};
      client.rpc<void()>("shutdown").on(client.lookup(address)).timeout(20s)();
      call_returned = true;
    } catch (const std::exception& e) {
      client_error = e.what();
    }
  });
  server.wait_for_finalize();  // returns once the handler asked for it
  EXPECT_TRUE(server.finalized());
  EXPECT_TRUE(callback_ran.load());
  client_thread.join();
  EXPECT_TRUE(call_returned.load()) << client_error;
}

TEST_P(RpcFinalize, FinalizeFromAnotherThreadReleasesWaitForFinalize) {
  Engine server{loopback()};
  std::thread other([&server] {
    std::this_thread::sleep_for(50ms);
    server.finalize();
  });
  server.wait_for_finalize();
  EXPECT_TRUE(server.finalized());
  other.join();
}

// finalize() from a plain thread racing the main thread's entry into wait_for_finalize(): both
// orders, and everything in between, end with one finalize and both threads returned.
TEST_P(RpcFinalize, FinalizeFromAnotherThreadRacingWaitForFinalizeNeverHangs) {
  for (int round = 0; round < 40; ++round) {
    Engine server{loopback()};
    std::atomic<bool> go{false};
    std::thread other([&] {
      while (!go.load()) {
      }
      for (int spin = 0; spin < round * 50; ++spin)
        std::atomic_signal_fence(std::memory_order_seq_cst);
      server.finalize();  // finalizes, or asks the waiting main thread to
    });
    go.store(true);
    server.wait_for_finalize();
    EXPECT_TRUE(server.finalized());
    other.join();
  }
}

TEST_P(RpcFinalize, WaitForFinalizeAfterFinalizeReturnsAtOnce) {
  Engine server{loopback()};
  server.finalize();
  server.wait_for_finalize();
  EXPECT_TRUE(server.finalized());
}

TEST_P(RpcFinalize, ShutdownRequestedByAHandlerBeforeWaitForFinalizeIsNotLost) {
  ServerAndClient sc{transport()};
  sc.server.define("shutdown", [](const Request& request) { request.engine().finalize(); });
  sc.server.define("sum", [](int a, int b) { return a + b; });
  sc.client.rpc<void()>("shutdown").on(sc.endpoint)();
  EXPECT_FALSE(sc.server.finalized());  // asked only: the handler cannot finalize itself
  // Meanwhile new requests are refused with a clear error.
  try {
    sc.client.rpc<int(int, int)>("sum").on(sc.endpoint).timeout(20s)(1, 2);
    FAIL() << "expected RemoteError";
  } catch (const RemoteError& e) {
    EXPECT_NE(std::string(e.what()).find("finaliz"), std::string::npos) << e.what();
  }
  sc.server.wait_for_finalize();  // returns: the request was remembered
  EXPECT_TRUE(sc.server.finalized());
}

TEST_P(RpcFinalize, FinalizeRequestedBeforeWaitForFinalizeDoesNotBlockIt) {
  Engine server{loopback()};
  server.define("shutdown", [](const Request& request) { request.engine().finalize(); });
  // A self call runs the handler on this thread, inside no ULT: finalize() then finalizes.
  server.rpc<void()>("shutdown").on(server.self())();
  server.wait_for_finalize();
  EXPECT_TRUE(server.finalized());
}

bool is_network_or_remote_error(const std::exception_ptr& error, std::string& what) {
  try {
    std::rethrow_exception(error);
  } catch (const NetworkError& e) {
    what = e.what();
    return true;
  } catch (const RemoteError& e) {
    what = e.what();
    return true;
  } catch (const std::exception& e) {
    what = std::string("unexpected exception: ") + e.what();
    return false;
  }
}

TEST_P(RpcFinalize, CallAfterTheServerFinalizedFailsWithoutHanging) {
  Engine server{loopback()};
  server.define("sum", [](int a, int b) { return a + b; });
  Engine client{EngineOptions{.address = transport(), .transport = {.connect_timeout = 3000ms}}};
  Endpoint ep = client.lookup(server.address());
  auto sum = client.rpc<int(int, int)>("sum");
  EXPECT_EQ(sum.on(ep)(1, 2), 3);  // connected before the finalize
  server.finalize();
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::exception_ptr error;
    try {
      // The timeout is a guard only: the call must fail on its own, long before it.
      sum.on(ep).timeout(20s)(1, 2);
    } catch (...) {
      error = std::current_exception();
    }
    ASSERT_TRUE(error) << "a call to a finalized server succeeded";
    std::string what;
    EXPECT_TRUE(is_network_or_remote_error(error, what)) << what;
  }
  // A client that never connected fails as well.
  Engine fresh{EngineOptions{.address = transport(), .transport = {.connect_timeout = 3000ms}}};
  std::exception_ptr error;
  try {
    fresh.rpc<int(int, int)>("sum").on(fresh.lookup(server.address())).timeout(20s)(1, 2);
  } catch (...) {
    error = std::current_exception();
  }
  ASSERT_TRUE(error);
  std::string what;
  EXPECT_TRUE(is_network_or_remote_error(error, what)) << what;
}

TEST_P(RpcFinalize, ServerKilledWhileACallIsPendingGivesNetworkError) {
  TempDir dir;
  TestServer server(dir.path(), loopback());
  ASSERT_FALSE(server.address.empty());
  Engine client{transport()};
  Endpoint ep = client.lookup(server.address);
  auto sleep_ms = client.rpc<uint32_t(uint32_t)>("sleep_ms");
  EXPECT_EQ(sleep_ms.on(ep)(1), 1u);
  auto pending = sleep_ms.on(ep).timeout(30s).async(20000);
  server.process.kill(SIGKILL);
  try {
    pending.wait();
    FAIL() << "expected NetworkError";
  } catch (const NetworkError& e) {
    EXPECT_NE(std::string(e.what()).find("sleep_ms"), std::string::npos) << e.what();
  }
  auto status = server.process.wait_exit(10s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFSIGNALED(*status));
  // Later calls to the dead server fail too, without hanging.
  EXPECT_THROW(sleep_ms.on(ep).timeout(20s)(1), NetworkError);
}

DANGO_INSTANTIATE_OVER_TRANSPORTS(RpcFinalize);

}  // namespace
}  // namespace dango::rpc
