// A server facing hostile input on its port, through raw sockets: random bytes, valid transport
// frames carrying garbage RPC headers or arguments, truncated requests. Each is answered with an
// error or dropped, never a crash, and a normal client is served afterwards.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <string>

#include "dango/dango.hpp"
#include "common/raw_socket.hpp"
#include "rpc_test_util.hpp"

namespace dango::rpc {
namespace {

using namespace testing;

// Mirrors of the wire layouts (src/net/tcp/frame.hpp, src/rpc/message.hpp), written out so
// that the test checks the protocol rather than reusing the code under test.
constexpr uint32_t kFrameMagic = 0x4f474e44;  // "DNGO"
constexpr uint32_t kRpcMagic = 0x52474e44;    // "DNGR"
enum : uint8_t { kHello = 1, kMessage = 2 };
enum : uint8_t { kRequest = 1, kResponse = 2, kErrorReply = 3 };
constexpr size_t kFrameHeaderSize = 16;
constexpr size_t kRpcHeaderSize = 32;

std::string frame(uint8_t type, const std::string& payload) {
  std::string h(kFrameHeaderSize, '\0');
  std::memcpy(h.data(), &kFrameMagic, 4);
  h[4] = 1;  // version
  h[5] = static_cast<char>(type);
  const uint64_t length = payload.size();
  std::memcpy(h.data() + 8, &length, 8);
  return h + payload;
}

struct RpcHeader {
  uint32_t magic = kRpcMagic;
  uint8_t version = 1;
  uint8_t kind = kRequest;
  uint8_t flags = 0;
  uint8_t reserved = 0;
  uint32_t rpc_id = 0;
  uint16_t provider_id = 0;
  uint16_t reserved2 = 0;
  uint64_t request_id = 0;
  uint32_t credential = 0;
  uint32_t payload_size = 0;
};
static_assert(sizeof(RpcHeader) == kRpcHeaderSize);

std::string rpc_message(RpcHeader header, const std::string& payload,
                        std::optional<uint32_t> payload_size = std::nullopt) {
  header.payload_size = payload_size.value_or(static_cast<uint32_t>(payload.size()));
  std::string bytes(kRpcHeaderSize, '\0');
  std::memcpy(bytes.data(), &header, kRpcHeaderSize);
  return bytes + payload;
}

template <class T>
std::string raw(const T& value) {
  return std::string(reinterpret_cast<const char*>(&value), sizeof value);
}

using dango::testing::RawSocket;

// The payload of the next MESSAGE frame the server sends on `socket` (skipping its HELLO), or
// nothing.
std::optional<std::string> read_message(RawSocket& socket, std::chrono::milliseconds limit = 10s) {
  while (true) {
    auto header = socket.read_exactly(kFrameHeaderSize, limit);
    if (!header) return std::nullopt;
    uint64_t length = 0;
    std::memcpy(&length, header->data() + 8, 8);
    if (length > (1u << 20)) return std::nullopt;
    auto payload = socket.read_exactly(length, limit);
    if (!payload) return std::nullopt;
    if (static_cast<uint8_t>((*header)[5]) == kMessage) return payload;
  }
}

// What the server answered to one request: its RPC header and the error text or payload.
struct Reply {
  RpcHeader header;
  std::string payload;
  std::string error_text() const {
    if (payload.size() < 4) return {};
    uint32_t n = 0;
    std::memcpy(&n, payload.data(), 4);
    return payload.substr(4, n);
  }
};

std::optional<Reply> read_reply(RawSocket& socket) {
  auto message = read_message(socket);
  if (!message || message->size() < kRpcHeaderSize) return std::nullopt;
  Reply reply;
  std::memcpy(&reply.header, message->data(), kRpcHeaderSize);
  reply.payload = message->substr(kRpcHeaderSize);
  return reply;
}

struct HostileFixture : ::testing::Test {
  HostileFixture() : server(server_on_own_thread("tcp://127.0.0.1:0")) {
    server.define("sum", [](int32_t a, int32_t b) { return a + b; });
  }
  // A normal client still gets served.
  void expect_still_serving() {
    Engine client{"tcp"};
    auto sum = client.rpc<int32_t(int32_t, int32_t)>("sum");
    EXPECT_EQ(sum.on(client.lookup(server.address())).timeout(20s)(40, 2), 42);
  }
  Engine server;
};

using RpcRobustness = HostileFixture;

TEST_F(RpcRobustness, RandomBytesCloseOnlyThatConnection) {
  std::mt19937 rng(1234);
  for (int round = 0; round < 3; ++round) {
    RawSocket socket(server.address());
    std::string junk(4096, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    socket.write(junk);
    EXPECT_TRUE(socket.closed_by_peer()) << "round " << round;
  }
  expect_still_serving();
}

TEST_F(RpcRobustness, GarbageRpcHeadersInValidFramesAreAnsweredOrDropped) {
  RawSocket socket(server.address());
  socket.write(frame(kHello, ""));  // a client that does not listen

  // Too short for an RPC header, and a header with a bad magic: dropped without a reply.
  socket.write(frame(kMessage, "tiny"));
  RpcHeader bad_magic;
  bad_magic.magic = 0xdeadbeef;
  bad_magic.request_id = 1;
  socket.write(frame(kMessage, rpc_message(bad_magic, "")));
  // A header of an unknown kind, and a response nobody asked for: dropped.
  RpcHeader bad_kind;
  bad_kind.kind = 9;
  bad_kind.request_id = 2;
  socket.write(frame(kMessage, rpc_message(bad_kind, "")));
  RpcHeader stray_response;
  stray_response.kind = kResponse;
  stray_response.request_id = 3;
  socket.write(frame(kMessage, rpc_message(stray_response, "xyz")));
  // 64 random bytes after a valid RPC magic.
  {
    std::mt19937 rng(99);
    std::string junk = raw(kRpcMagic);
    for (int i = 0; i < 60; ++i) junk += static_cast<char>(rng());
    socket.write(frame(kMessage, junk));
  }

  // Requests with something wrong: each answered with an error reply echoing its request id.
  struct Case {
    uint64_t request_id;
    std::string message;
    std::string expected_text;
  };
  const uint32_t sum_id = detail::rpc_id("sum");
  std::vector<Case> cases;
  {
    RpcHeader h;
    h.version = 42;
    h.request_id = 101;
    cases.push_back({101, rpc_message(h, ""), "version"});
  }
  {
    RpcHeader h;
    h.rpc_id = sum_id;
    h.request_id = 102;
    cases.push_back({102, rpc_message(h, raw(int32_t{1}) + raw(int32_t{2}), 1000), "size"});
  }
  {
    RpcHeader h;
    h.rpc_id = detail::rpc_id("no_such_rpc");
    h.request_id = 103;
    cases.push_back({103, rpc_message(h, ""), "no RPC"});
  }
  {
    RpcHeader h;
    h.rpc_id = sum_id;
    h.provider_id = 77;
    h.request_id = 104;
    cases.push_back({104, rpc_message(h, raw(int32_t{1}) + raw(int32_t{2})), "provider 77"});
  }
  {
    RpcHeader h;
    h.rpc_id = sum_id;
    h.request_id = 105;
    cases.push_back({105, rpc_message(h, "abc"), "malformed arguments"});  // truncated args
  }
  {
    RpcHeader h;
    h.rpc_id = sum_id;
    h.request_id = 106;
    cases.push_back({106, rpc_message(h, raw(int32_t{1}) + raw(int32_t{2}) + "extra"),
                     "malformed arguments"});  // trailing bytes
  }
  for (const auto& c : cases) socket.write(frame(kMessage, c.message));

  // The random bytes may happen to form a request and be answered too: collect replies until
  // every case has its own.
  std::map<uint64_t, Reply> replies;
  auto all_answered = [&] {
    for (const auto& c : cases) {
      if (!replies.count(c.request_id)) return false;
    }
    return true;
  };
  while (!all_answered()) {
    auto reply = read_reply(socket);
    ASSERT_TRUE(reply) << "a request got no reply (" << replies.size() << " replies so far)";
    replies[reply->header.request_id] = *reply;
  }
  for (const auto& c : cases) {
    ASSERT_TRUE(replies.count(c.request_id)) << "no reply for request " << c.request_id;
    const Reply& r = replies[c.request_id];
    EXPECT_EQ(r.header.magic, kRpcMagic);
    EXPECT_EQ(r.header.kind, kErrorReply) << c.request_id;
    EXPECT_NE(r.error_text().find(c.expected_text), std::string::npos)
        << "request " << c.request_id << ": " << r.error_text();
  }

  // The same connection still serves a well-formed request.
  RpcHeader good;
  good.rpc_id = sum_id;
  good.request_id = 200;
  socket.write(frame(kMessage, rpc_message(good, raw(int32_t{20}) + raw(int32_t{22}))));
  auto reply = read_reply(socket);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->header.kind, kResponse);
  EXPECT_EQ(reply->header.request_id, 200u);
  ASSERT_EQ(reply->payload.size(), 4u);
  int32_t result = 0;
  std::memcpy(&result, reply->payload.data(), 4);
  EXPECT_EQ(result, 42);
  expect_still_serving();
}

TEST_F(RpcRobustness, OneWayGarbageGetsNoReply) {
  RawSocket socket(server.address());
  socket.write(frame(kHello, ""));
  RpcHeader h;
  h.flags = 1;  // one-way
  h.rpc_id = detail::rpc_id("no_such_rpc");
  h.request_id = 1;
  socket.write(frame(kMessage, rpc_message(h, "")));
  h.rpc_id = detail::rpc_id("sum");
  h.request_id = 2;
  socket.write(frame(kMessage, rpc_message(h, "x")));  // malformed arguments, one-way
  EXPECT_TRUE(socket.quiet_for(300ms));
  expect_still_serving();
}

TEST_F(RpcRobustness, TruncatedRequestsAreHarmless) {
  const uint32_t sum_id = detail::rpc_id("sum");
  RpcHeader h;
  h.rpc_id = sum_id;
  h.request_id = 1;
  const std::string full = frame(kMessage, rpc_message(h, raw(int32_t{1}) + raw(int32_t{2})));
  // Cut at every interesting place: in the frame header, in the RPC header, in the arguments.
  for (size_t cut : {size_t{3}, kFrameHeaderSize, kFrameHeaderSize + 10,
                     kFrameHeaderSize + kRpcHeaderSize + 5}) {
    RawSocket socket(server.address());
    socket.write(frame(kHello, ""));
    socket.write(full.substr(0, cut));
  }  // closed mid-frame
  {
    // A frame that announces more bytes than it sends, then a pause, then a close.
    RawSocket socket(server.address());
    socket.write(frame(kHello, ""));
    std::string header = full.substr(0, kFrameHeaderSize);
    const uint64_t announced = 1000;
    std::memcpy(header.data() + 8, &announced, 8);
    socket.write(header + full.substr(kFrameHeaderSize, 20));
    EXPECT_TRUE(socket.quiet_for(100ms));
  }
  {
    // A frame announcing more than the message size limit is refused by closing.
    RawSocket socket(server.address());
    socket.write(frame(kHello, ""));
    std::string header = full.substr(0, kFrameHeaderSize);
    const uint64_t huge = uint64_t{1} << 40;
    std::memcpy(header.data() + 8, &huge, 8);
    socket.write(header);
    EXPECT_TRUE(socket.closed_by_peer());
  }
  expect_still_serving();
}

TEST_F(RpcRobustness, ManyAbruptConnectionsLeaveTheServerServing) {
  for (int i = 0; i < 50; ++i) {
    RawSocket socket(server.address());
    if (i % 2 == 0) socket.write(frame(kHello, ""));
  }
  expect_still_serving();
}

TEST_F(RpcRobustness, ClientDisappearingBeforeItsReplyIsHarmless) {
  server.define("slow", [](int32_t x) {
    thread::this_ult::sleep_for(100ms);
    return x;
  });
  for (int i = 0; i < 3; ++i) {
    RawSocket socket(server.address());
    socket.write(frame(kHello, ""));
    RpcHeader h;
    h.rpc_id = detail::rpc_id("slow");
    h.request_id = 1;
    socket.write(frame(kMessage, rpc_message(h, raw(int32_t{5}))));
  }  // closed while the handler sleeps
  std::this_thread::sleep_for(200ms);
  expect_still_serving();
}

}  // namespace
}  // namespace dango::rpc
