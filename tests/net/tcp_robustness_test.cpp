// The tcp transport facing hostile input: garbage on the wire closes only the offending
// connection, a refused PUT keeps it. Real processes are in transport_processes_test.cpp.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include "common/raw_socket.hpp"
#include "net_test_util.hpp"

namespace dango::net {
namespace {

using namespace testing;

// Mirrors of the wire layout (src/net/tcp/frame.hpp), written out so that the test checks the
// protocol rather than reusing the code under test.
constexpr uint32_t kMagic = 0x4f474e44;
enum : uint8_t { kHello = 1, kMessage = 2, kPutRequest = 5, kPutAck = 6 };

std::string base_header(uint8_t type, uint64_t length, uint32_t magic = kMagic) {
  std::string h(16, '\0');
  std::memcpy(h.data(), &magic, 4);
  h[4] = 1;  // version
  h[5] = static_cast<char>(type);
  std::memcpy(h.data() + 8, &length, 8);
  return h;
}

std::string bulk_header(uint64_t op, uint64_t key, uint64_t offset, uint64_t size) {
  std::string h(32, '\0');
  uint64_t fields[] = {op, key, offset, size};
  std::memcpy(h.data(), fields, 32);
  return h;
}

using dango::testing::RawSocket;

TEST(TcpRobustness, GarbageClosesOnlyTheOffendingConnection) {
  auto s = make_transport("tcp://127.0.0.1:0");
  Echo echo(*s);
  s->set_handler(&echo);
  auto pump = [&] {
    for (int i = 0; i < 50; ++i) s->progress(std::chrono::microseconds(200));
  };

  std::mt19937 rng(42);
  std::string noise(8192, '\0');
  for (auto& ch : noise) ch = static_cast<char>(rng());
  RawSocket random_bytes(s->address());
  random_bytes.write(noise);

  RawSocket bad_magic(s->address());
  bad_magic.write(base_header(kHello, 0, 0xdeadbeef));

  RawSocket no_hello(s->address());
  no_hello.write(base_header(kMessage, 3) + "abc");

  RawSocket huge(s->address());
  huge.write(base_header(kHello, 0) + base_header(kMessage, uint64_t{1} << 40));

  RawSocket truncated(s->address());
  truncated.write(base_header(kHello, 0) + base_header(kMessage, 100).substr(0, 9));

  RawSocket half_message(s->address());  // stays open, announcing bytes it never sends
  half_message.write(base_header(kHello, 0) + base_header(kMessage, 100) + "0123456789");

  pump();
  EXPECT_TRUE(random_bytes.closed_by_peer(std::chrono::milliseconds(0)));
  EXPECT_TRUE(bad_magic.closed_by_peer(std::chrono::milliseconds(0)));
  EXPECT_TRUE(no_hello.closed_by_peer(std::chrono::milliseconds(0)));
  EXPECT_TRUE(huge.closed_by_peer(std::chrono::milliseconds(0)));
  EXPECT_FALSE(half_message.closed_by_peer(std::chrono::milliseconds(0)));

  // A refused PUT (unknown key) gets an error PUT_ACK and the connection stays open.
  RawSocket bad_put(s->address());
  bad_put.write(base_header(kHello, 0) + base_header(kPutRequest, 1000) +
                bulk_header(7, 12345, 0, 1000) + std::string(1000, 'p') + base_header(kMessage, 2) +
                "ok");
  pump();
  std::string reply = bad_put.read_some();
  ASSERT_GE(reply.size(), 48u);
  EXPECT_EQ(static_cast<uint8_t>(reply[5]), kPutAck);
  EXPECT_NE(static_cast<uint8_t>(reply[6]), 0) << "error status expected";
  EXPECT_NE(reply.find("unknown memory key"), std::string::npos);
  EXPECT_NE(reply.find("ok"), std::string::npos) << "the message after the PUT is echoed";
  EXPECT_FALSE(bad_put.closed_by_peer(std::chrono::milliseconds(0)));

  // A normal client is still served.
  auto c = make_transport("tcp");
  Inbox inbox;
  c->set_handler(&inbox);
  ASSERT_TRUE(send_text(*c, c->lookup(s->address()), "normal").ok());
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return inbox.count() == 1; }));
  EXPECT_EQ(inbox.message(0).second, "normal");
}

}  // namespace
}  // namespace dango::net
