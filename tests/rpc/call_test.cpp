// Calls between two engines, over every transport in the binary: typed arguments and results,
// synchronous, asynchronous and one-way calls, timeouts, and errors (handler exceptions, unknown
// RPCs and providers).

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "dango/dango.hpp"
#include "over_transports.hpp"
#include "rpc_test_util.hpp"

namespace dango::rpc {
namespace {

using namespace testing;

struct Particle {
  std::string name;
  std::vector<double> position;
  std::map<std::string, int32_t> tags;
  std::optional<uint64_t> parent;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, position, tags, parent);
  }
  bool operator==(const Particle&) const = default;
};

class RpcCall : public OverTransports {};

// A server and a client whose server serves "sleep_ms(ms)": it sleeps that long, or until the
// test ends, whichever comes first. A call timing out before the sleep ends is then certain to
// time out, and no test waits out the sleep when it finalizes the server (finalize waits for
// running handlers).
struct SleepyServer {
  explicit SleepyServer(EngineOptions server_options) : sc(std::move(server_options)) {
    sc.server.define("sleep_ms", [this](int ms) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
      while (!test_over && std::chrono::steady_clock::now() < deadline) {
        thread::this_ult::sleep_for(1ms);
      }
      return ms;
    });
  }
  ~SleepyServer() { test_over = true; }  // before `sc` finalizes the server
  std::atomic<bool> test_over{false};
  ServerAndClient sc;
};

TEST_P(RpcCall, IntArgumentsAndResultRoundTrip) {
  ServerAndClient sc{transport()};
  sc.server.define("sum", [](int a, int b) { return a + b; });
  auto sum = sc.client.rpc<int(int, int)>("sum");
  EXPECT_EQ(sum.on(sc.endpoint)(1, 2), 3);
  EXPECT_EQ(sum.on(sc.endpoint)(-40, 2), -38);
}

TEST_P(RpcCall, StringArgumentAndResultRoundTrip) {
  ServerAndClient sc{transport()};
  sc.server.define("shout", [](const std::string& s) { return s + "!"; });
  auto shout = sc.client.rpc<std::string(std::string)>("shout");
  EXPECT_EQ(shout.on(sc.endpoint)("hello"), "hello!");
  EXPECT_EQ(shout.on(sc.endpoint)(""), "!");
  const std::string big(200000, 'x');
  EXPECT_EQ(shout.on(sc.endpoint)(big), big + "!");
}

TEST_P(RpcCall, VectorAndMapRoundTrip) {
  ServerAndClient sc{transport()};
  sc.server.define("histogram", [](const std::vector<int32_t>& values) {
    std::map<int32_t, uint32_t> counts;
    for (int32_t v : values) ++counts[v];
    return counts;
  });
  auto histogram = sc.client.rpc<std::map<int32_t, uint32_t>(std::vector<int32_t>)>("histogram");
  std::map<int32_t, uint32_t> expected{{1, 2}, {5, 1}, {-3, 3}};
  EXPECT_EQ(histogram.on(sc.endpoint)({1, 5, -3, 1, -3, -3}), expected);
  EXPECT_TRUE(histogram.on(sc.endpoint)({}).empty());
}

TEST_P(RpcCall, OptionalRoundTripsBothPresentAndAbsent) {
  ServerAndClient sc{transport()};
  sc.server.define("find", [](const std::map<std::string, int>& m, const std::string& key) {
    auto it = m.find(key);
    return it == m.end() ? std::optional<int>{} : std::optional<int>{it->second};
  });
  auto find = sc.client.rpc<std::optional<int>(std::map<std::string, int>, std::string)>("find");
  std::map<std::string, int> m{{"a", 1}, {"b", 2}};
  EXPECT_EQ(find.on(sc.endpoint)(m, "b"), std::optional<int>(2));
  EXPECT_EQ(find.on(sc.endpoint)(m, "z"), std::nullopt);
}

TEST_P(RpcCall, VariantRoundTripsEachAlternative) {
  using Value = std::variant<int64_t, std::string, std::vector<double>>;
  ServerAndClient sc{transport()};
  sc.server.define("identity", [](const Value& v) { return v; });
  auto identity = sc.client.rpc<Value(Value)>("identity");
  EXPECT_EQ(identity.on(sc.endpoint)(Value{int64_t{-7}}), Value{int64_t{-7}});
  EXPECT_EQ(identity.on(sc.endpoint)(Value{std::string("text")}), Value{std::string("text")});
  EXPECT_EQ(identity.on(sc.endpoint)(Value{std::vector<double>{1.5, 2.5}}),
            (Value{std::vector<double>{1.5, 2.5}}));
}

TEST_P(RpcCall, TupleResultRoundTrips) {
  ServerAndClient sc{transport()};
  sc.server.define("divmod",
                   [](int64_t a, int64_t b) { return std::tuple<int64_t, int64_t>(a / b, a % b); });
  auto divmod = sc.client.rpc<std::tuple<int64_t, int64_t>(int64_t, int64_t)>("divmod");
  EXPECT_EQ(divmod.on(sc.endpoint)(17, 5), (std::tuple<int64_t, int64_t>{3, 2}));
}

TEST_P(RpcCall, UserStructWithSerializeMemberRoundTrips) {
  ServerAndClient sc{transport()};
  sc.server.define("move_particle", [](Particle p, double dx) {
    for (double& x : p.position) x += dx;
    p.tags["moved"] = 1;
    return p;
  });
  auto move = sc.client.rpc<Particle(Particle, double)>("move_particle");
  Particle p{"muon", {1.0, 2.0, 3.0}, {{"run", 42}}, 7};
  Particle expected = p;
  for (double& x : expected.position) x += 0.5;
  expected.tags["moved"] = 1;
  EXPECT_EQ(move.on(sc.endpoint)(p, 0.5), expected);
}

TEST_P(RpcCall, VoidResultCompletesAfterTheHandlerRan) {
  ServerAndClient sc{transport()};
  int stored = 0;
  sc.server.define("store", [&stored](int v) { stored = v; });
  sc.client.rpc<void(int)>("store").on(sc.endpoint)(99);
  EXPECT_EQ(stored, 99);
}

TEST_P(RpcCall, NoArgumentsNoResult) {
  ServerAndClient sc{transport()};
  int calls = 0;
  sc.server.define("ping", [&calls] { ++calls; });
  auto ping = sc.client.rpc<void()>("ping");
  ping.on(sc.endpoint)();
  ping.on(sc.endpoint)();
  EXPECT_EQ(calls, 2);
}

TEST_P(RpcCall, HandlerTakingRequestFirstLearnsTheRpcNameAndProvider) {
  ServerAndClient sc{transport()};
  sc.server.define("whoami",
                   [](const Request& request, int x) {
                     return request.rpc_name() + "/" + std::to_string(request.provider_id()) + "/" +
                            std::to_string(x) + "/" +
                            (request.source().valid() ? "valid" : "invalid");
                   },
                   {.provider_id = 3});
  auto whoami = sc.client.rpc<std::string(int)>("whoami");
  EXPECT_EQ(whoami.on(sc.endpoint).with(3)(8), "whoami/3/8/valid");
}

TEST_P(RpcCall, ManyAsyncCallsFromOneUltAreMatchedToTheirResults) {
  ServerAndClient sc{transport()};
  sc.server.define("square", [](int64_t x) { return x * x; });
  auto square = sc.client.rpc<int64_t(int64_t)>("square");
  constexpr int kCalls = 64;
  std::vector<int64_t> results(kCalls, -1);
  sc.client.rpc_pool()
      .spawn([&] {
        std::vector<Pending<int64_t>> pending;
        for (int i = 0; i < kCalls; ++i) pending.push_back(square.on(sc.endpoint).async(i));
        // Wait in reverse order: results must match the request, not the arrival order.
        for (int i = kCalls - 1; i >= 0; --i) results[i] = pending[i].wait();
      })
      .join();
  for (int i = 0; i < kCalls; ++i) EXPECT_EQ(results[i], int64_t{i} * i) << i;
}

TEST_P(RpcCall, ManyAsyncCallsFromTheMainThreadAreMatchedToTheirResults) {
  ServerAndClient sc{transport()};
  sc.server.define("echo", [](const std::string& s) { return s; });
  auto echo = sc.client.rpc<std::string(std::string)>("echo");
  std::vector<Pending<std::string>> pending;
  for (int i = 0; i < 64; ++i) pending.push_back(echo.on(sc.endpoint).async(std::to_string(i)));
  for (int i = 0; i < 64; ++i) EXPECT_EQ(pending[i].wait(), std::to_string(i));
}

TEST_P(RpcCall, DroppedPendingDoesNotDisturbLaterCalls) {
  ServerAndClient sc{transport()};
  sc.server.define("square", [](int64_t x) { return x * x; });
  sc.server.define("sleep_ms", [](int ms) {
    thread::this_ult::sleep_for(std::chrono::milliseconds(ms));
    return ms;
  });
  auto square = sc.client.rpc<int64_t(int64_t)>("square");
  auto sleep_ms = sc.client.rpc<int(int)>("sleep_ms");
  for (int i = 0; i < 16; ++i) {
    auto dropped = square.on(sc.endpoint).async(i);  // never waited
  }
  {
    auto dropped = sleep_ms.on(sc.endpoint).async(50);  // its response arrives after the drop
  }
  for (int i = 0; i < 16; ++i) EXPECT_EQ(square.on(sc.endpoint)(i + 100), (i + 100) * (i + 100));
  EXPECT_EQ(sleep_ms.on(sc.endpoint)(60), 60);  // outlives the dropped call's late response
  EXPECT_EQ(square.on(sc.endpoint)(3), 9);
}

TEST_P(RpcCall, SlowHandlerTimesOutWithTimeoutError) {
  if (in_process()) GTEST_SKIP() << "an in-process call is a function call on the caller's ULT: it cannot time out";
  SleepyServer sleepy{EngineOptions{.address = loopback()}};
  ServerAndClient& sc = sleepy.sc;
  auto sleep_ms = sc.client.rpc<int(int)>("sleep_ms");
  try {
    sleep_ms.on(sc.endpoint).timeout(50ms)(10000);
    FAIL() << "expected TimeoutError";
  } catch (const TimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("sleep_ms"), std::string::npos) << e.what();
  }
}

TEST_P(RpcCall, CallsAfterATimeoutStillWorkAndTheLateResponseIsDropped) {
  if (in_process()) GTEST_SKIP() << "an in-process call is a function call on the caller's ULT: it cannot time out";
  ServerAndClient sc{transport()};
  std::atomic<bool> slow_one_answered{false};
  sc.server.define("sleep_ms", [&slow_one_answered](int ms) {
    thread::this_ult::sleep_for(std::chrono::milliseconds(ms));
    if (ms == 300) slow_one_answered = true;
    return ms;
  });
  auto sleep_ms = sc.client.rpc<int(int)>("sleep_ms");
  EXPECT_THROW(sleep_ms.on(sc.endpoint).timeout(20ms)(300), TimeoutError);
  // A call issued while the late response is still due gets its own result...
  EXPECT_EQ(sleep_ms.on(sc.endpoint)(1), 1);
  // ...and so does one issued after the late response arrived (and was dropped).
  const bool late_sent =
      eventually([&] { return sleep_ms.on(sc.endpoint)(0) == 0 && slow_one_answered.load(); });
  EXPECT_TRUE(late_sent);
  EXPECT_EQ(sleep_ms.on(sc.endpoint).timeout(10s)(2), 2);
}

TEST_P(RpcCall, TimeoutOnAsyncCallIsReportedByWait) {
  if (in_process()) GTEST_SKIP() << "an in-process call is a function call on the caller's ULT: it cannot time out";
  SleepyServer sleepy{EngineOptions{.address = loopback()}};
  ServerAndClient& sc = sleepy.sc;
  auto pending = sc.client.rpc<int(int)>("sleep_ms").on(sc.endpoint).timeout(20ms).async(10000);
  EXPECT_THROW(pending.wait(), TimeoutError);
}

TEST_P(RpcCall, TimeoutFromInsideAUltIsReported) {
  if (in_process()) GTEST_SKIP() << "an in-process call is a function call on the caller's ULT: it cannot time out";
  SleepyServer sleepy{EngineOptions{.address = loopback()}};
  ServerAndClient& sc = sleepy.sc;
  auto sleep_ms = sc.client.rpc<int(int)>("sleep_ms");
  bool timed_out = false;
  int later = -1;
  sc.client.rpc_pool()
      .spawn([&] {
        try {
          sleep_ms.on(sc.endpoint).timeout(20ms)(10000);
        } catch (const TimeoutError&) {
          timed_out = true;
        }
        later = sleep_ms.on(sc.endpoint)(3);
      })
      .join();
  EXPECT_TRUE(timed_out);
  EXPECT_EQ(later, 3);
}

TEST_P(RpcCall, TimeoutAgainstAServerOnItsOwnThreadIsReported) {
  if (in_process()) GTEST_SKIP() << "an in-process call is a function call on the caller's ULT: it cannot time out";
  SleepyServer sleepy{server_on_own_thread(loopback())};
  ServerAndClient& sc = sleepy.sc;
  auto sleep_ms = sc.client.rpc<int(int)>("sleep_ms");
  EXPECT_THROW(sleep_ms.on(sc.endpoint).timeout(20ms)(10000), TimeoutError);
  EXPECT_EQ(sleep_ms.on(sc.endpoint).timeout(20s)(2), 2);
}

TEST_P(RpcCall, OneWayNotifyRunsTheHandler) {
  ServerAndClient sc{transport()};
  std::atomic<int> total{0};
  sc.server.define("add", [&total](int n) { total += n; });
  sc.server.define("total", [&total] { return total.load(); });
  auto add = sc.client.rpc<void(int)>("add");
  auto get_total = sc.client.rpc<int()>("total");
  add.on(sc.endpoint).notify(5);
  add.on(sc.endpoint).notify(7);
  // One-way calls have no completion: observe their side effect with later synchronous calls.
  EXPECT_TRUE(eventually([&] { return get_total.on(sc.endpoint)() == 12; }));
}

TEST_P(RpcCall, OneWayNotifyToAFailingHandlerDoesNotDisturbTheServer) {
  ServerAndClient sc{transport()};
  sc.server.define("fail", [](int) { throw std::runtime_error("one-way failure"); });
  sc.server.define("sum", [](int a, int b) { return a + b; });
  sc.client.rpc<void(int)>("fail").on(sc.endpoint).notify(1);
  sc.client.rpc<void(int)>("no_such_rpc").on(sc.endpoint).notify(1);
  EXPECT_EQ(sc.client.rpc<int(int, int)>("sum").on(sc.endpoint)(2, 3), 5);
}

TEST_P(RpcCall, HandlerExceptionReachesCallerAsRemoteError) {
  ServerAndClient sc{transport()};
  sc.server.define("fail", [](const std::string& why) -> int { throw std::runtime_error(why); });
  auto fail = sc.client.rpc<int(std::string)>("fail");
  try {
    fail.on(sc.endpoint)("disk on fire");
    FAIL() << "expected RemoteError";
  } catch (const RemoteError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("disk on fire"), std::string::npos) << what;
    EXPECT_NE(what.find("fail"), std::string::npos) << what;
    EXPECT_NE(what.find(sc.server.address()), std::string::npos) << what;
  }
}

TEST_P(RpcCall, HandlerThrowingANonStandardExceptionIsStillAnError) {
  ServerAndClient sc{transport()};
  sc.server.define("weird", []() -> int { throw 42; });
  EXPECT_THROW(sc.client.rpc<int()>("weird").on(sc.endpoint)(), RemoteError);
}

TEST_P(RpcCall, UnknownRpcNameIsARemoteErrorNamingTheRpc) {
  ServerAndClient sc{transport()};
  try {
    sc.client.rpc<int(int)>("does_not_exist").on(sc.endpoint)(1);
    FAIL() << "expected RemoteError";
  } catch (const RemoteError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("does_not_exist"), std::string::npos) << what;
    EXPECT_NE(what.find("no RPC"), std::string::npos) << what;
  }
}

TEST_P(RpcCall, UnknownProviderIdIsARemoteErrorNamingTheProvider) {
  ServerAndClient sc{transport()};
  sc.server.define("sum", [](int a, int b) { return a + b; });
  try {
    sc.client.rpc<int(int, int)>("sum").on(sc.endpoint).with(7)(1, 2);
    FAIL() << "expected RemoteError";
  } catch (const RemoteError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("sum"), std::string::npos) << what;
    EXPECT_NE(what.find("provider 7"), std::string::npos) << what;
  }
}

TEST_P(RpcCall, ArgumentsOfTheWrongTypeAreARemoteErrorNotACrash) {
  ServerAndClient sc{transport()};
  sc.server.define("sum", [](int a, int b) { return a + b; });
  try {
    sc.client.rpc<int(std::string)>("sum").on(sc.endpoint)("not two ints at all");
    FAIL() << "expected RemoteError";
  } catch (const RemoteError& e) {
    EXPECT_NE(std::string(e.what()).find("malformed arguments"), std::string::npos) << e.what();
  }
  EXPECT_EQ(sc.client.rpc<int(int, int)>("sum").on(sc.endpoint)(4, 5), 9);
}

TEST_P(RpcCall, DeregisteredRpcIsRefused) {
  ServerAndClient sc{transport()};
  sc.server.define("sum", [](int a, int b) { return a + b; });
  auto sum = sc.client.rpc<int(int, int)>("sum");
  EXPECT_EQ(sum.on(sc.endpoint)(1, 1), 2);
  sc.server.deregister("sum");
  EXPECT_THROW(sum.on(sc.endpoint)(1, 1), RemoteError);
}

TEST_P(RpcCall, DefiningTheSameNameAndProviderTwiceThrows) {
  Engine engine{loopback()};
  engine.define("sum", [](int a, int b) { return a + b; });
  EXPECT_THROW(engine.define("sum", [](int a, int b) { return a - b; }), Error);
  EXPECT_NO_THROW(engine.define("sum", [](int a, int b) { return a - b; }, {.provider_id = 1}));
}

TEST_P(RpcCall, CallToAnUnreachableAddressFailsWithNetworkError) {
  if (in_process()) GTEST_SKIP() << "about a transport's addresses and limits; an in-process call has neither";
  // Listen, then stop, so that nothing listens at that address any more.
  std::string address;
  {
    Engine gone{loopback()};
    address = gone.address();
  }
  Engine client{EngineOptions{.address = transport(), .transport = {.connect_timeout = 2000ms}}};
  auto sum = client.rpc<int(int, int)>("sum");
  try {
    sum.on(client.lookup(address)).timeout(10s)(1, 2);
    FAIL() << "expected NetworkError";
  } catch (const NetworkError& e) {
    SUCCEED() << e.what();
  }
}

TEST_P(RpcCall, ArgumentsOverTheMessageLimitFailAtOnceAndLaterCallsWork) {
  if (in_process()) GTEST_SKIP() << "about a transport's addresses and limits; an in-process call has neither";
  Engine server{EngineOptions{.address = loopback()}};
  server.define("size", [](const std::string& s) { return s.size(); });
  Engine client{EngineOptions{.address = transport(), .transport = {.max_message_size = 4096}}};
  auto size = client.rpc<size_t(std::string)>("size").on(client.lookup(server.address()));
  EXPECT_THROW(size(std::string(10000, 'x')), NetworkError);
  EXPECT_THROW(size.async(std::string(10000, 'x')), NetworkError);
  EXPECT_EQ(size(std::string(100, 'x')), 100u);
}

TEST_P(RpcCall, LookupOfAMalformedAddressThrowsNetworkError) {
  if (in_process()) GTEST_SKIP() << "about a transport's addresses and limits; an in-process call has neither";
  Engine client{transport()};
  EXPECT_THROW(client.lookup(transport() + "://"), NetworkError);
  EXPECT_THROW(client.lookup("nonsense"), Error);
}

DANGO_INSTANTIATE_OVER_TRANSPORTS_AND_SELF(RpcCall);

}  // namespace
}  // namespace dango::rpc
