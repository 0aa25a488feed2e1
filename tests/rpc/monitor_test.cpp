// Engine monitoring: every call, request and bulk transfer is reported to the installed Monitor
// with its names, peers, sizes, outcome and stage timings; nothing once it is removed.

#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

#include "dango/dango.hpp"
#include "rpc_test_util.hpp"

namespace dango::rpc {
namespace {

using namespace testing;

// Keeps a copy of every event (the strings only live during the callback).
class Recorder final : public Monitor {
 public:
  struct Call {
    std::string rpc, peer;
    ProviderId provider_id;
    CallOutcome outcome;
    size_t request_bytes, response_bytes;
    std::chrono::nanoseconds latency;
  };
  struct Served {
    std::string rpc, peer;
    ProviderId provider_id;
    bool failed;
    size_t request_bytes, response_bytes, bulk_bytes;
    std::chrono::nanoseconds queued, handler, bulk;
  };
  struct Transfer {
    bool pull;
    std::string peer;
    size_t bytes;
    bool failed;
  };
  void on_call(const CallEvent& e) override {
    std::lock_guard lock(mutex_);
    calls.push_back({std::string(e.rpc), std::string(e.peer), e.provider_id, e.outcome,
                     e.request_bytes, e.response_bytes, e.latency});
  }
  void on_request(const RequestEvent& e) override {
    std::lock_guard lock(mutex_);
    served.push_back({std::string(e.rpc), std::string(e.peer), e.provider_id, e.failed,
                      e.request_bytes, e.response_bytes, e.bulk_bytes, e.queued, e.handler,
                      e.bulk});
  }
  void on_bulk(const BulkEvent& e) override {
    std::lock_guard lock(mutex_);
    transfers.push_back({e.pull, std::string(e.peer), e.bytes, e.failed});
  }
  size_t served_count() {
    std::lock_guard lock(mutex_);
    return served.size();
  }
  std::vector<Call> calls;
  std::vector<Served> served;
  std::vector<Transfer> transfers;

 private:
  std::mutex mutex_;
};

// The server on a stream of its own, so that it finishes its work (and its reports) while the
// test's thread waits for them.
struct MonitoredPair : ServerAndClient {
  MonitoredPair() : ServerAndClient(server_on_own_thread("tcp://127.0.0.1:0")) {
    server.set_monitor(server_side);
    client.set_monitor(client_side);
  }
  std::shared_ptr<Recorder> server_side = std::make_shared<Recorder>();
  std::shared_ptr<Recorder> client_side = std::make_shared<Recorder>();
};

TEST(RpcMonitor, ACallIsReportedOnBothSidesWithNamesPeersAndSizes) {
  MonitoredPair mp;
  mp.server.define("echo", [](const std::string& s) { return s; }, {.provider_id = 3});
  EXPECT_EQ(mp.client.rpc<std::string(std::string)>("echo").on(mp.endpoint).with(3)("hello"),
            "hello");
  ASSERT_TRUE(eventually([&] { return mp.server_side->served_count() == 1; }));
  ASSERT_EQ(mp.client_side->calls.size(), 1u);
  const auto& call = mp.client_side->calls[0];
  EXPECT_EQ(call.rpc, "echo");
  EXPECT_EQ(call.provider_id, 3);
  EXPECT_EQ(call.peer, mp.server.address());
  EXPECT_EQ(call.outcome, CallOutcome::kOk);
  EXPECT_GT(call.request_bytes, 5u);
  EXPECT_GT(call.response_bytes, 5u);
  EXPECT_GT(call.latency.count(), 0);
  const auto& served = mp.server_side->served[0];
  EXPECT_EQ(served.rpc, "echo");
  EXPECT_EQ(served.provider_id, 3);
  EXPECT_FALSE(served.failed);
  EXPECT_EQ(served.request_bytes, call.request_bytes);
  EXPECT_EQ(served.response_bytes, call.response_bytes);
  EXPECT_GE(served.queued.count(), 0);
  EXPECT_GE(served.handler.count(), 0);
  EXPECT_EQ(served.bulk_bytes, 0u);
  // The server names the client as the connection knows it.
  EXPECT_TRUE(served.peer.starts_with("tcp://")) << served.peer;
}

TEST(RpcMonitor, FailuresAreReportedWithTheirOutcome) {
  MonitoredPair mp;
  mp.server.define("fail", [] { throw std::runtime_error("no"); });
  mp.server.define("slow", [] { thread::this_ult::sleep_for(std::chrono::milliseconds(300)); });
  EXPECT_THROW(mp.client.rpc<void()>("fail").on(mp.endpoint)(), RemoteError);
  EXPECT_THROW(mp.client.rpc<void()>("slow").on(mp.endpoint).timeout(std::chrono::milliseconds(20))(),
               TimeoutError);
  ASSERT_TRUE(eventually([&] { return mp.server_side->served_count() == 2; }));
  ASSERT_EQ(mp.client_side->calls.size(), 2u);
  EXPECT_EQ(mp.client_side->calls[0].outcome, CallOutcome::kRemoteError);
  EXPECT_EQ(mp.client_side->calls[1].outcome, CallOutcome::kTimeout);
  EXPECT_GE(mp.client_side->calls[1].latency, std::chrono::milliseconds(20));
  EXPECT_TRUE(mp.server_side->served[0].failed);
  EXPECT_FALSE(mp.server_side->served[1].failed);
  EXPECT_GE(mp.server_side->served[1].handler, std::chrono::milliseconds(300));
}

TEST(RpcMonitor, BulkTransfersOfAHandlerAreItsBulkStage) {
  MonitoredPair mp;
  mp.server.define("sum", [](const Request& request, const Bulk& remote) {
    std::vector<std::byte> buffer(remote.size());
    Bulk local = request.engine().expose(buffer, Access::kWriteOnly);
    request.engine().pull(request.source(), remote, 0, local, 0, remote.size());
    uint64_t sum = 0;
    for (std::byte b : buffer) sum += static_cast<uint8_t>(b);
    return sum;
  });
  std::vector<std::byte> data = pattern(100000, 4);
  Bulk bulk = mp.client.expose(data, Access::kReadOnly);
  mp.client.rpc<uint64_t(Bulk)>("sum").on(mp.endpoint)(bulk);
  ASSERT_TRUE(eventually([&] { return mp.server_side->served_count() == 1; }));
  const auto& served = mp.server_side->served[0];
  EXPECT_EQ(served.bulk_bytes, data.size());
  EXPECT_GT(served.bulk.count(), 0);
  EXPECT_LE(served.bulk, served.handler);
  ASSERT_EQ(mp.server_side->transfers.size(), 1u);
  EXPECT_TRUE(mp.server_side->transfers[0].pull);
  EXPECT_EQ(mp.server_side->transfers[0].bytes, data.size());
  EXPECT_FALSE(mp.server_side->transfers[0].failed);
}

TEST(RpcMonitor, OneWayCallsAreReportedWhenSent) {
  MonitoredPair mp;
  std::atomic<int> ran{0};
  mp.server.define("note", [&ran](int) { ++ran; });
  mp.server.define("one", [] { return 1; });
  mp.client.rpc<void(int)>("note").on(mp.endpoint).notify(1);
  // A call after it drives the client's progress (the thread's primary stream) until the
  // notification has left; messages to one peer arrive in order.
  mp.client.rpc<int()>("one").on(mp.endpoint)();
  ASSERT_TRUE(eventually([&] { return mp.server_side->served_count() == 2; }));
  ASSERT_EQ(mp.client_side->calls.size(), 2u);
  EXPECT_EQ(mp.client_side->calls[0].response_bytes, 0u);
  EXPECT_EQ(mp.server_side->served[0].response_bytes, 0u);
}

TEST(RpcMonitor, NothingIsReportedOnceTheMonitorIsRemoved) {
  MonitoredPair mp;
  mp.server.define("one", [] { return 1; });
  mp.client.rpc<int()>("one").on(mp.endpoint)();
  ASSERT_TRUE(eventually([&] { return mp.server_side->served_count() == 1; }));
  mp.client.set_monitor(nullptr);
  mp.server.set_monitor(nullptr);
  mp.client.rpc<int()>("one").on(mp.endpoint)();
  EXPECT_EQ(mp.client_side->calls.size(), 1u);
  EXPECT_EQ(mp.server_side->served_count(), 1u);
}

}  // namespace
}  // namespace dango::rpc
