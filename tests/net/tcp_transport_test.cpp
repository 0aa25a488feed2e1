// What only the tcp transport does with addresses: the forms it accepts and refuses, IPv6, and
// host names. Messages, bulk and processes over tcp are in the transport_*_test.cpp suites.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "dango/common/error.hpp"
#include "net_test_util.hpp"

namespace dango::net {
namespace {

using namespace testing;

std::unique_ptr<Transport> server(std::string_view address = "tcp://127.0.0.1:0",
                                  TransportOptions options = {}) {
  return make_transport(address, options);
}

bool ipv6_loopback_available() {
  int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_loopback;
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

TEST(TcpTransport, MalformedAddressesThrowNamingTheAddress) {
  auto t = make_transport("tcp");
  for (const char* bad :
       {"tcp://127.0.0.1", "tcp://:80", "tcp://[::1:80", "tcp://host:notaport", "sm://x"}) {
    try {
      t->lookup(bad);
      ADD_FAILURE() << "no error for " << bad;
    } catch (const NetworkError& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(make_transport("tcp://1.2.3:x"), NetworkError);
}

TEST(TcpTransport, WorksOverIpv6) {
  if (!ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback on this machine";
  auto s = server("tcp://[::1]:0");
  ASSERT_TRUE(s->address().starts_with("tcp://[::1]:")) << s->address();
  auto c = make_transport("tcp");
  Echo echo(*s);
  Inbox inbox;
  s->set_handler(&echo);
  c->set_handler(&inbox);
  ASSERT_TRUE(send_text(*c, c->lookup(s->address()), "v6").ok());
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return inbox.count() == 1; }));
  EXPECT_EQ(inbox.message(0).second, "v6");
}

TEST(TcpTransport, HostNamesResolve) {
  auto s = server("tcp://localhost:0");
  auto port = s->address().substr(s->address().rfind(':') + 1);
  auto c = make_transport("tcp");
  Echo echo(*s);
  Inbox inbox;
  s->set_handler(&echo);
  c->set_handler(&inbox);
  auto peer = c->lookup("tcp://localhost:" + port);
  EXPECT_EQ(peer, c->lookup(s->address()));  // the canonical address is the same peer
  ASSERT_TRUE(send_text(*c, peer, "by name").ok());
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return inbox.count() == 1; }));
}

}  // namespace
}  // namespace dango::net
