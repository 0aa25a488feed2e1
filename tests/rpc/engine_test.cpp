// The Engine itself: addresses and lookup, where handlers run (pools and execution streams), the
// in-process path (engine.self()), and options read from JSON. What does not depend on the
// transport runs over every transport in the binary.

#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>

#include "dango/dango.hpp"
#include "over_transports.hpp"
#include "rpc_test_util.hpp"

namespace dango::rpc {
namespace {

using namespace testing;

// Counts copies and moves of itself, to show which call paths copy arguments.
struct Counted {
  static inline std::atomic<int> copies{0};
  static inline std::atomic<int> moves{0};
  int value = 0;
  Counted() = default;
  explicit Counted(int v) : value(v) {}
  Counted(const Counted& o) : value(o.value) { ++copies; }
  Counted(Counted&& o) noexcept : value(o.value) { ++moves; }
  Counted& operator=(const Counted& o) {
    value = o.value;
    ++copies;
    return *this;
  }
  Counted& operator=(Counted&& o) noexcept {
    value = o.value;
    ++moves;
    return *this;
  }
  template <class Archive>
  void serialize(Archive& ar) {
    ar(value);
  }
};

class RpcEngine : public OverTransports {};

// ---- addresses ---------------------------------------------------------------------------

TEST_P(RpcEngine, ListeningOnTheLoopbackAddressReportsTheConcreteAddress) {
  Engine engine{loopback()};
  const std::string& address = engine.address();
  // Of the transport asked for, with a location that names this engine (a port chosen for
  // "tcp://127.0.0.1:0", a name for an unnamed "sm://"), not the wildcard it was given.
  EXPECT_EQ(address.rfind(transport() + "://", 0), 0u) << address;
  EXPECT_FALSE(net::split_address(address).second.empty()) << address;
  EXPECT_NE(address, loopback());
  EXPECT_EQ(engine.addresses(), std::vector<std::string>{address});
  // And it is an address a client reaches the engine at.
  engine.define("ping", [] { return 1; });
  Engine client{transport()};
  EXPECT_EQ(client.rpc<int()>("ping").on(client.lookup(address))(), 1);
}

TEST(RpcEngine, ListeningOnPortZeroReportsTheChosenPort) {
  Engine engine{"tcp://127.0.0.1:0"};
  const std::string& address = engine.address();
  EXPECT_EQ(address.rfind("tcp://127.0.0.1:", 0), 0u) << address;
  EXPECT_NE(address, "tcp://127.0.0.1:0");
  EXPECT_GT(std::stoi(address.substr(address.rfind(':') + 1)), 0);
}

TEST_P(RpcEngine, ClientOnlyEngineReportsItsScheme) {
  Engine engine{transport()};
  EXPECT_EQ(engine.address(), transport());
  EXPECT_TRUE(engine.addresses().empty());
}

TEST_P(RpcEngine, TwoServersGetDifferentAddresses) {
  Engine a{loopback()};
  Engine b{loopback()};
  EXPECT_NE(a.address(), b.address());
}

TEST_P(RpcEngine, LookupOfOwnAddressOrSelfGivesTheInProcessEndpoint) {
  Engine engine{loopback()};
  EXPECT_TRUE(engine.self().is_self());
  EXPECT_TRUE(engine.lookup("self").is_self());
  EXPECT_TRUE(engine.lookup(engine.address()).is_self());
  EXPECT_EQ(engine.self().address(), engine.address());
  Engine other{loopback()};
  Endpoint ep = engine.lookup(other.address());
  EXPECT_FALSE(ep.is_self());
  EXPECT_TRUE(ep.valid());
  EXPECT_EQ(ep.address(), other.address());
}

TEST(RpcEngine, ListeningOnATakenPortThrowsNetworkError) {
  Engine first{"tcp://127.0.0.1:0"};
  EXPECT_THROW(Engine second{first.address()}, NetworkError);
}

TEST_P(RpcEngine, TwoAddressesOfOneTransportAreAConfigError) {
  EXPECT_THROW((Engine{EngineOptions{.address = loopback(), .extra_addresses = {loopback()}}}),
               ConfigError);
}

// ---- pools -------------------------------------------------------------------------------

TEST_P(RpcEngine, HandlersRunAsUltsInTheConfiguredRpcPool) {
  ServerAndClient sc{
      EngineOptions{.address = loopback(),
                    .threads = {.pools = {{.name = "handlers"}},
                                .xstreams = {{.name = "handler_stream", .pools = {"handlers"}}},
                                .rpc_pool = "handlers"}}};
  const auto main_thread = std::this_thread::get_id();
  std::atomic<bool> on_main_thread{true};
  sc.server.define("where", [&] {
    on_main_thread = std::this_thread::get_id() == main_thread;
    return std::string(thread::current_pool().name()) + (thread::this_ult::inside() ? "/ult" : "");
  });
  EXPECT_EQ(sc.server.rpc_pool().name(), "handlers");
  EXPECT_EQ(sc.client.rpc<std::string()>("where").on(sc.endpoint)(), "handlers/ult");
  EXPECT_FALSE(on_main_thread.load()) << "the handler ran on the caller's thread";
}

TEST_P(RpcEngine, DefineOptionsPoolOverridesTheRpcPool) {
  ServerAndClient sc{EngineOptions{
      .address = loopback(),
      .threads = {.pools = {{.name = "a"}, {.name = "b"}},
                  .xstreams = {{.name = "xa", .pools = {"a"}}, {.name = "xb", .pools = {"b"}}},
                  .rpc_pool = "a"}}};
  auto pool_name = [] { return std::string(thread::current_pool().name()); };
  sc.server.define("in_a", pool_name);
  sc.server.define("in_b", pool_name, {.pool = sc.server.runtime().pool("b")});
  EXPECT_EQ(sc.client.rpc<std::string()>("in_a").on(sc.endpoint)(), "a");
  EXPECT_EQ(sc.client.rpc<std::string()>("in_b").on(sc.endpoint)(), "b");
}

TEST_P(RpcEngine, ProgressRunsInTheConfiguredProgressPool) {
  Engine engine{EngineOptions{.address = loopback(),
                              .threads = {.pools = {{.name = "progress"}},
                                          .xstreams = {{.name = "px", .pools = {"progress"}}},
                                          .progress_pool = "progress"}}};
  EXPECT_EQ(engine.progress_pool().name(), "progress");
  EXPECT_EQ(engine.rpc_pool().name(), thread::kPrimary);
  Engine client{transport()};
  engine.define("sum", [](int a, int b) { return a + b; });
  EXPECT_EQ(client.rpc<int(int, int)>("sum").on(client.lookup(engine.address()))(20, 22), 42);
}

TEST_P(RpcEngine, EngineCanShareAnExistingRuntime) {
  thread::Runtime runtime{{.pools = {{.name = "rpc"}},
                           .xstreams = {{.name = "rx", .pools = {"rpc"}}},
                           .rpc_pool = "rpc"}};
  {
    Engine server{EngineOptions{.address = loopback()}, runtime};
    Engine client{EngineOptions{.address = transport()}, runtime};
    EXPECT_EQ(&server.runtime(), &runtime);
    server.define("pool", [] { return std::string(thread::current_pool().name()); });
    EXPECT_EQ(client.rpc<std::string()>("pool").on(client.lookup(server.address()))(), "rpc");
  }
  // The runtime outlives its engines and still runs ULTs.
  int ran = 0;
  runtime.pool("rpc").spawn([&] { ran = 1; }).join();
  EXPECT_EQ(ran, 1);
}

DANGO_INSTANTIATE_OVER_TRANSPORTS(RpcEngine);

// ---- in-process path -----------------------------------------------------------------------

TEST(RpcEngine, SelfCallReturnsTheHandlersResult) {
  Engine engine{"tcp://127.0.0.1:0"};
  engine.define("sum", [](int a, int b) { return a + b; });
  engine.define("concat", [](const std::vector<std::string>& parts) {
    std::string out;
    for (const auto& p : parts) out += p;
    return out;
  });
  EXPECT_EQ(engine.rpc<int(int, int)>("sum").on(engine.self())(2, 3), 5);
  EXPECT_EQ(engine.rpc<std::string(std::vector<std::string>)>("concat").on(engine.self())(
                {"a", "b", "c"}),
            "abc");
  EXPECT_EQ(engine.rpc<int(int, int)>("sum").on(engine.lookup(engine.address()))(7, 8), 15);
}

TEST(RpcEngine, SelfCallWorksOnAClientOnlyEngine) {
  Engine engine{"tcp"};
  engine.define("twice", [](int x) { return 2 * x; });
  EXPECT_EQ(engine.rpc<int(int)>("twice").on(engine.self())(21), 42);
}

TEST(RpcEngine, SelfCallPassesTheCallersObjectWithoutCopy) {
  Engine engine{"tcp://127.0.0.1:0"};
  engine.define("address_of", [](const Counted& c) {
    return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(&c));
  });
  Counted arg{5};
  Counted::copies = 0;
  Counted::moves = 0;
  const uint64_t seen = engine.rpc<uint64_t(Counted)>("address_of").on(engine.self())(arg);
  EXPECT_EQ(seen, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(&arg)));
  EXPECT_EQ(Counted::copies.load(), 0);
  EXPECT_EQ(Counted::moves.load(), 0);
}

TEST(RpcEngine, SelfCallRunsOnTheCallersThread) {
  Engine engine{EngineOptions{.address = "tcp://127.0.0.1:0",
                              .threads = {.pools = {{.name = "handlers"}},
                                          .xstreams = {{.name = "hx", .pools = {"handlers"}}},
                                          .rpc_pool = "handlers"}}};
  engine.define("thread_id",
                [] { return std::hash<std::thread::id>{}(std::this_thread::get_id()); });
  // A function call on the caller's ULT (DESIGN.md), not a hand-off to the provider's pool.
  EXPECT_EQ(engine.rpc<size_t()>("thread_id").on(engine.self())(),
            std::hash<std::thread::id>{}(std::this_thread::get_id()));
}

TEST(RpcEngine, SelfCallWithWireCompatibleTypesGoesThroughTheEncoding) {
  Engine engine{"tcp://127.0.0.1:0"};
  engine.define("length", [](std::string_view s) { return static_cast<uint64_t>(s.size()); });
  // Sent as std::string, taken as std::string_view: same bytes on the wire.
  EXPECT_EQ(engine.rpc<uint64_t(std::string)>("length").on(engine.self())("hello"), 5u);
}

TEST(RpcEngine, SelfCallReportsTheHandlersExceptionAsTheRemoteErrorARemoteCallerGets) {
  // A caller's error handling must not depend on where the provider lives: the in-process path
  // turns a handler's exception into the same RemoteError (same text) as a remote call does.
  Engine engine{"tcp://127.0.0.1:0"};
  engine.define("fail", []() -> int { throw std::invalid_argument("bad input here"); });
  Engine remote_caller{"tcp"};
  auto fail = engine.rpc<int()>("fail");
  auto what_of = [](auto&& call) -> std::string {
    try {
      call();
    } catch (const RemoteError& e) {
      return e.what();
    }
    return "no RemoteError";
  };
  const std::string in_process = what_of([&] { fail.on(engine.self())(); });
  const std::string remote =
      what_of([&] { remote_caller.rpc<int()>("fail").on(remote_caller.lookup(engine.address()))(); });
  EXPECT_NE(in_process.find("bad input here"), std::string::npos) << in_process;
  EXPECT_EQ(in_process, remote);
  auto pending = fail.on(engine.self()).async();
  EXPECT_THROW(pending.wait(), RemoteError);
  // One-way: the failure stays on the serving side, as it does remotely.
  EXPECT_NO_THROW(engine.rpc<void()>("fail").on(engine.self()).notify());
  EXPECT_NO_THROW(engine.rpc<void()>("no_such_rpc").on(engine.self()).notify());
}

TEST(RpcEngine, SelfCallToAnUnknownRpcOrProviderIsARemoteErrorNamingIt) {
  Engine engine{"tcp://127.0.0.1:0"};
  engine.define("sum", [](int a, int b) { return a + b; });
  try {
    engine.rpc<int(int)>("missing").on(engine.self())(1);
    FAIL() << "expected RemoteError";
  } catch (const RemoteError& e) {
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos) << e.what();
  }
  try {
    engine.rpc<int(int, int)>("sum").on(engine.self()).with(9)(1, 2);
    FAIL() << "expected RemoteError";
  } catch (const RemoteError& e) {
    EXPECT_NE(std::string(e.what()).find("provider 9"), std::string::npos) << e.what();
  }
}

TEST(RpcEngine, SelfAsyncAndNotifyRunTheHandler) {
  Engine engine{"tcp://127.0.0.1:0"};
  int total = 0;
  engine.define("add", [&total](int n) { total += n; });
  engine.define("square", [](int n) { return n * n; });
  engine.rpc<void(int)>("add").on(engine.self()).notify(4);
  EXPECT_EQ(total, 4);
  auto pending = engine.rpc<int(int)>("square").on(engine.self()).async(9);
  EXPECT_TRUE(pending.ready());
  EXPECT_EQ(pending.wait(), 81);
  auto void_pending = engine.rpc<void(int)>("add").on(engine.self()).async(1);
  void_pending.wait();
  EXPECT_EQ(total, 5);
}

// ---- options -----------------------------------------------------------------------------

TEST(RpcEngineOptions, FromJsonReadsTransportThreadsAndRpcKeys) {
  auto json = nlohmann::json::parse(R"({
    "transport": "tcp://127.0.0.1:0",
    "threads": {
      "pools": [{"name": "rpc", "kind": "fifo_wait"}],
      "xstreams": [{"name": "io", "pools": ["rpc"]}],
      "rpc_pool": "rpc"
    },
    "rpc": {"progress_poll_us": 500, "finalize_timeout_ms": 1500,
            "max_message_size": 1048576, "bulk_chunk_size": 65536, "connect_timeout_ms": 250}
  })");
  EngineOptions options = EngineOptions::from_json(json);
  EXPECT_EQ(options.address, "tcp://127.0.0.1:0");
  EXPECT_EQ(options.threads.rpc_pool, "rpc");
  ASSERT_EQ(options.threads.xstreams.size(), 1u);
  EXPECT_EQ(options.threads.xstreams[0].name, "io");
  EXPECT_EQ(options.progress_poll, std::chrono::microseconds(500));
  EXPECT_EQ(options.finalize_timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(options.transport.max_message_size, 1048576u);
  EXPECT_EQ(options.transport.bulk_chunk_size, 65536u);
  EXPECT_EQ(options.transport.connect_timeout, std::chrono::milliseconds(250));

  // The options make a working engine whose handlers run in the configured pool.
  ServerAndClient sc{options};
  sc.server.define("pool", [] { return std::string(thread::current_pool().name()); });
  EXPECT_EQ(sc.client.rpc<std::string()>("pool").on(sc.endpoint)(), "rpc");
}

TEST(RpcEngineOptions, TransportGivenAsAListListensOnEachAddress) {
  auto json = nlohmann::json::parse(R"({"transport": ["tcp://127.0.0.1:0", "sm://"]})");
  EngineOptions options = EngineOptions::from_json(json);
  EXPECT_EQ(options.address, "tcp://127.0.0.1:0");
  EXPECT_EQ(options.extra_addresses, std::vector<std::string>{"sm://"});
  EXPECT_EQ(EngineOptions::from_json(options.to_json()).to_json(), options.to_json());
  EXPECT_EQ(options.to_json()["transport"], json["transport"]);
  try {
    EngineOptions::from_json(nlohmann::json::parse(R"({"transport": []})"));
    ADD_FAILURE() << "an empty list was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("transport"), std::string::npos) << e.what();
  }
  EXPECT_THROW(EngineOptions::from_json(nlohmann::json::parse(R"({"transport": ["tcp", 3]})")),
               ConfigError);
}

TEST(RpcEngineOptions, FromJsonOfAnEmptyObjectGivesTheDefaults) {
  EngineOptions options = EngineOptions::from_json(nlohmann::json::object());
  EngineOptions defaults;
  EXPECT_EQ(options.address, defaults.address);
  EXPECT_EQ(options.progress_poll, defaults.progress_poll);
  EXPECT_EQ(options.finalize_timeout, defaults.finalize_timeout);
  EXPECT_EQ(options.to_json(), defaults.to_json());
}

TEST(RpcEngineOptions, ToJsonRoundTripsThroughFromJson) {
  EngineOptions options{.address = "tcp://127.0.0.1:0",
                        .progress_poll = std::chrono::microseconds(123)};
  options.transport.bulk_chunk_size = 1 << 16;
  EngineOptions again = EngineOptions::from_json(options.to_json());
  EXPECT_EQ(again.to_json(), options.to_json());
  EXPECT_EQ(again.progress_poll, std::chrono::microseconds(123));
}

TEST(RpcEngineOptions, UnknownTopLevelKeyIsAConfigErrorNamingIt) {
  auto json = nlohmann::json::parse(R"({"transport": "tcp", "tranport": "tcp"})");
  try {
    EngineOptions::from_json(json);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("tranport"), std::string::npos) << e.what();
  }
}

TEST(RpcEngineOptions, UnknownRpcKeyIsAConfigErrorNamingItsPath) {
  auto json = nlohmann::json::parse(R"({"rpc": {"progress_pol_us": 10}})");
  try {
    EngineOptions::from_json(json, "engine");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("progress_pol_us"), std::string::npos) << what;
    EXPECT_NE(what.find("rpc"), std::string::npos) << what;
  }
}

TEST(RpcEngineOptions, WrongTypeIsAConfigErrorNamingTheKey) {
  auto json = nlohmann::json::parse(R"({"rpc": {"finalize_timeout_ms": "soon"}})");
  try {
    EngineOptions::from_json(json);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("finalize_timeout_ms"), std::string::npos) << e.what();
  }
}

TEST(RpcEngineOptions, UnknownThreadsKeyIsAConfigErrorNamingIt) {
  auto json = nlohmann::json::parse(R"({"threads": {"pool": []}})");
  try {
    EngineOptions::from_json(json);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("pool"), std::string::npos) << e.what();
  }
}

TEST(RpcEngineOptions, RpcPoolNotServedByAnyStreamIsRejected) {
  auto json = nlohmann::json::parse(R"({"threads": {"pools": [{"name": "orphan"}],
                                                     "rpc_pool": "orphan"}})");
  EXPECT_THROW(Engine{EngineOptions::from_json(json)}, ConfigError);
}

}  // namespace
}  // namespace dango::rpc
