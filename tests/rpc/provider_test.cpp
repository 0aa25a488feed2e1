// Providers: RPCs defined from member functions, several providers of the same RPC names in one
// process told apart by their ids, their pools, and their RPCs refused once they are destroyed;
// over every transport in the binary.

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "dango/dango.hpp"
#include "over_transports.hpp"
#include "rpc_test_util.hpp"

namespace dango::rpc {
namespace {

using namespace testing;

// A tiny key/value provider: member functions, one const, one taking the Request.
class Store : public Provider {
 public:
  Store(Engine& engine, ProviderId id, std::string label, thread::Pool pool = {})
      : Provider(engine, id, pool), label_(std::move(label)) {
    define("put", &Store::put);
    define("get", &Store::get);
    define("label", &Store::label);
    define("served_by", &Store::served_by);
    define("pool", [] { return std::string(thread::current_pool().name()); });
  }
  void put(const std::string& key, const std::string& value) { data_[key] = value; }
  std::optional<std::string> get(const std::string& key) const {
    auto it = data_.find(key);
    return it == data_.end() ? std::nullopt : std::optional(it->second);
  }
  std::string label() const { return label_; }
  std::string served_by(const Request& request) {
    return request.rpc_name() + "@" + std::to_string(request.provider_id());
  }

 private:
  std::string label_;
  std::map<std::string, std::string> data_;
};

class RpcProvider : public OverTransports {};

struct StoreClient {
  StoreClient(Engine& engine, Endpoint ep, ProviderId id)
      : put(engine.rpc<void(std::string, std::string)>("put")),
        get(engine.rpc<std::optional<std::string>(std::string)>("get")),
        label(engine.rpc<std::string()>("label")),
        ep(std::move(ep)),
        id(id) {}
  RemoteProcedure<void(std::string, std::string)> put;
  RemoteProcedure<std::optional<std::string>(std::string)> get;
  RemoteProcedure<std::string()> label;
  Endpoint ep;
  ProviderId id;
};

TEST_P(RpcProvider, MemberFunctionsServeRpcs) {
  ServerAndClient sc{transport()};
  Store store(sc.server, 1, "one");
  EXPECT_EQ(store.provider_id(), 1);
  StoreClient c(sc.client, sc.endpoint, 1);
  c.put.on(c.ep).with(1)("k", "v");
  EXPECT_EQ(c.get.on(c.ep).with(1)("k"), std::optional<std::string>("v"));
  EXPECT_EQ(c.get.on(c.ep).with(1)("missing"), std::nullopt);
  EXPECT_EQ(c.label.on(c.ep).with(1)(), "one");
  EXPECT_EQ(sc.client.rpc<std::string()>("served_by").on(c.ep).with(1)(), "served_by@1");
}

TEST_P(RpcProvider, TwoProvidersWithTheSameRpcNamesAreServedIndependently) {
  ServerAndClient sc{transport()};
  Store first(sc.server, 1, "first");
  Store second(sc.server, 2, "second");
  StoreClient c(sc.client, sc.endpoint, 0);
  c.put.on(c.ep).with(1)("key", "in-first");
  c.put.on(c.ep).with(2)("key", "in-second");
  c.put.on(c.ep).with(2)("only", "second");
  EXPECT_EQ(c.get.on(c.ep).with(1)("key"), std::optional<std::string>("in-first"));
  EXPECT_EQ(c.get.on(c.ep).with(2)("key"), std::optional<std::string>("in-second"));
  EXPECT_EQ(c.get.on(c.ep).with(1)("only"), std::nullopt);
  EXPECT_EQ(c.label.on(c.ep).with(1)(), "first");
  EXPECT_EQ(c.label.on(c.ep).with(2)(), "second");
  // Provider 0 (the engine's own RPCs) serves none of these names.
  EXPECT_THROW(c.label.on(c.ep)(), RemoteError);
}

TEST_P(RpcProvider, DestroyedProvidersRpcsAreRefusedAndOthersStillServed) {
  ServerAndClient sc{transport()};
  Store survivor(sc.server, 1, "survivor");
  auto doomed = std::make_unique<Store>(sc.server, 2, "doomed");
  StoreClient c(sc.client, sc.endpoint, 0);
  EXPECT_EQ(c.label.on(c.ep).with(2)(), "doomed");
  doomed.reset();
  try {
    c.label.on(c.ep).with(2)();
    FAIL() << "expected RemoteError";
  } catch (const RemoteError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("label"), std::string::npos) << what;
    EXPECT_NE(what.find("provider 2"), std::string::npos) << what;
  }
  EXPECT_EQ(c.label.on(c.ep).with(1)(), "survivor");
  // The id can be reused by a new provider.
  Store reborn(sc.server, 2, "reborn");
  EXPECT_EQ(c.label.on(c.ep).with(2)(), "reborn");
}

TEST_P(RpcProvider, DestroyedProvidersRpcsAreRefusedOnTheInProcessPath) {
  Engine engine{loopback()};
  auto store = std::make_unique<Store>(engine, 4, "local");
  auto label = engine.rpc<std::string()>("label");
  EXPECT_EQ(label.on(engine.self()).with(4)(), "local");
  store.reset();
  EXPECT_THROW(label.on(engine.self()).with(4)(), RemoteError);
}

TEST_P(RpcProvider, TwoProvidersWithTheSameIdCannotCoexist) {
  Engine engine{loopback()};
  Store first(engine, 3, "first");
  EXPECT_THROW(Store(engine, 3, "second"), Error);
  // The failed construction must not have removed the first provider's RPCs.
  EXPECT_EQ(engine.rpc<std::string()>("label").on(engine.self()).with(3)(), "first");
}

TEST_P(RpcProvider, HandlersRunInTheProvidersPool) {
  if (in_process()) GTEST_SKIP() << "an in-process call runs on the caller's ULT, not in the provider's pool";
  ServerAndClient sc{
      EngineOptions{.address = loopback(),
                    .threads = {.pools = {{.name = "default_rpc"}, {.name = "store_pool"}},
                                .xstreams = {{.name = "x0", .pools = {"default_rpc"}},
                                             {.name = "x1", .pools = {"store_pool"}}},
                                .rpc_pool = "default_rpc"}}};
  Store pinned(sc.server, 1, "pinned", sc.server.runtime().pool("store_pool"));
  Store unpinned(sc.server, 2, "unpinned");
  EXPECT_EQ(pinned.pool().name(), "store_pool");
  EXPECT_EQ(unpinned.pool().name(), "default_rpc");
  auto pool = sc.client.rpc<std::string()>("pool");
  EXPECT_EQ(pool.on(sc.endpoint).with(1)(), "store_pool");
  EXPECT_EQ(pool.on(sc.endpoint).with(2)(), "default_rpc");
}

TEST_P(RpcProvider, ProviderServesManyConcurrentCalls) {
  ServerAndClient sc{transport()};
  Store store(sc.server, 1, "busy");
  auto put = sc.client.rpc<void(std::string, std::string)>("put");
  auto get = sc.client.rpc<std::optional<std::string>(std::string)>("get");
  std::vector<Pending<void>> puts;
  for (int i = 0; i < 100; ++i) {
    puts.push_back(put.on(sc.endpoint).with(1).async("k" + std::to_string(i), std::to_string(i)));
  }
  for (auto& p : puts) p.wait();
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(get.on(sc.endpoint).with(1)("k" + std::to_string(i)),
              std::optional<std::string>(std::to_string(i)));
  }
}

DANGO_INSTANTIATE_OVER_TRANSPORTS_AND_SELF(RpcProvider);

}  // namespace
}  // namespace dango::rpc
