// Messages over the tcp transport: addressing, both directions, ordering, size limits, many
// peers, threads, reconnect, peer loss, close and interrupt.

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

TEST(TcpTransport, PortZeroReportsTheBoundPort) {
  auto t = server();
  EXPECT_EQ(t->scheme(), "tcp");
  ASSERT_TRUE(t->address().starts_with("tcp://127.0.0.1:"));
  EXPECT_NE(t->address(), "tcp://127.0.0.1:0");
}

TEST(TcpTransport, BareSchemeIsClientOnly) {
  auto t = make_transport("tcp");
  EXPECT_TRUE(t->address().empty());
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

TEST(TcpTransport, MessagesFlowBothWaysOverOneConnectionPerPair) {
  auto a = server();
  auto b = server();
  Inbox inbox_a, inbox_b;
  a->set_handler(&inbox_a);
  b->set_handler(&inbox_b);
  auto b_from_a = a->lookup(b->address());
  EXPECT_EQ(b_from_a, a->lookup(b->address())) << "one Peer per address";
  ASSERT_TRUE(send_text(*a, b_from_a, "ping").ok());
  ASSERT_TRUE(drive({a.get(), b.get()}, [&] { return inbox_b.count() == 1; }));
  auto [from, text] = inbox_b.message(0);
  EXPECT_EQ(text, "ping");
  EXPECT_EQ(from->address(), a->address());
  // The HELLO registered a's address: b's lookup finds the Peer that messages come from.
  EXPECT_EQ(from, b->lookup(a->address()));
  ASSERT_TRUE(send_text(*b, from, "pong").ok());
  ASSERT_TRUE(drive({a.get(), b.get()}, [&] { return inbox_a.count() == 1; }));
  EXPECT_EQ(inbox_a.message(0).second, "pong");
  EXPECT_EQ(inbox_a.message(0).first, b_from_a);
}

TEST(TcpTransport, ClientOnlyPeerGetsRepliesOnItsConnection) {
  auto s = server();
  auto c = make_transport("tcp");
  Echo echo(*s);
  Inbox inbox;
  s->set_handler(&echo);
  c->set_handler(&inbox);
  auto peer = c->lookup(s->address());
  // Parts are concatenated into one message.
  std::string x = "hello ", y = "world";
  std::span<const std::byte> parts[] = {bytes_of(x), bytes_of(y), {}};
  ASSERT_TRUE(c->send(peer, parts).ok());
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return inbox.count() == 1; }));
  EXPECT_EQ(inbox.message(0).second, "hello world");
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

TEST(TcpTransport, LargeAndEmptyMessagesArriveIntact) {
  auto s = server();
  auto c = make_transport("tcp");
  Echo echo(*s);
  Inbox inbox;
  s->set_handler(&echo);
  c->set_handler(&inbox);
  auto peer = c->lookup(s->address());
  std::string big(8 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 + (i >> 12));
  ASSERT_TRUE(send_text(*c, peer, big).ok());
  ASSERT_TRUE(send_text(*c, peer, "").ok());
  ASSERT_TRUE(send_text(*c, peer, big.substr(0, 100000)).ok());
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return inbox.count() == 3; }));
  EXPECT_TRUE(inbox.message(0).second == big);
  EXPECT_EQ(inbox.message(1).second, "");
  EXPECT_TRUE(inbox.message(2).second == big.substr(0, 100000));
}

TEST(TcpTransport, MessageOverTheLimitIsRefused) {
  auto c = make_transport("tcp", {.max_message_size = 1000});
  auto s = server();
  auto peer = c->lookup(s->address());
  std::string text(1001, 'x');
  EXPECT_EQ(send_text(*c, peer, text).code, Status::Code::kMessageTooLarge);
  EXPECT_TRUE(send_text(*c, peer, text.substr(1)).ok());
}

TEST(TcpTransport, MessagesToOnePeerArriveInOrder) {
  auto s = server();
  auto c = make_transport("tcp");
  Inbox inbox;
  s->set_handler(&inbox);
  ProgressThread progress(*s);
  auto peer = c->lookup(s->address());
  constexpr int kCount = 20000;
  for (int i = 0; i < kCount; ++i) {
    // Sizes vary so that frames straddle reads.
    std::string text = std::to_string(i) + std::string(static_cast<size_t>(i % 97), '.');
    ASSERT_TRUE(send_text(*c, peer, text).ok());
    if (i % 64 == 0) c->progress(0us);
  }
  ASSERT_TRUE(drive({c.get()}, [&] { return inbox.count() == kCount; }));
  for (int i = 0; i < kCount; ++i) {
    auto text = inbox.message(static_cast<size_t>(i)).second;
    ASSERT_EQ(text.substr(0, text.find('.')), std::to_string(i));
  }
}

TEST(TcpTransport, SendIsThreadSafeWhileProgressRuns) {
  auto s = server();
  auto c = make_transport("tcp");
  Inbox inbox;
  s->set_handler(&inbox);
  ProgressThread server_progress(*s);
  ProgressThread client_progress(*c);
  auto peer = c->lookup(s->address());
  constexpr int kThreads = 4, kEach = 2000;
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        EXPECT_TRUE(send_text(*c, peer, std::to_string(t) + ":" + std::to_string(i)).ok());
      }
    });
  }
  for (auto& th : senders) th.join();
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (inbox.count() < kThreads * kEach && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(inbox.count(), size_t{kThreads * kEach});
  std::vector<int> next(kThreads, 0);
  for (size_t i = 0; i < inbox.count(); ++i) {
    auto text = inbox.message(i).second;
    int t = std::stoi(text.substr(0, text.find(':')));
    int n = std::stoi(text.substr(text.find(':') + 1));
    ASSERT_EQ(n, next[static_cast<size_t>(t)]++) << "per-thread order broken";
  }
}

TEST(TcpTransport, ServesManyPeers) {
  auto s = server();
  Echo echo(*s);
  s->set_handler(&echo);
  constexpr int kClients = 50, kEach = 20;
  std::vector<std::unique_ptr<Transport>> clients;
  std::vector<Inbox> inboxes(kClients);
  std::vector<Transport*> all{s.get()};
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(make_transport(i % 2 ? "tcp" : "tcp://127.0.0.1:0"));
    clients.back()->set_handler(&inboxes[static_cast<size_t>(i)]);
    all.push_back(clients.back().get());
  }
  for (int round = 0; round < kEach; ++round) {
    for (int i = 0; i < kClients; ++i) {
      auto peer = clients[static_cast<size_t>(i)]->lookup(s->address());
      ASSERT_TRUE(send_text(*clients[static_cast<size_t>(i)], peer,
                            std::to_string(i) + "/" + std::to_string(round))
                      .ok());
    }
  }
  ASSERT_TRUE(drive(all, [&] {
    for (auto& inbox : inboxes) {
      if (inbox.count() < kEach) return false;
    }
    return true;
  }));
  for (int i = 0; i < kClients; ++i) {
    for (int round = 0; round < kEach; ++round) {
      EXPECT_EQ(inboxes[static_cast<size_t>(i)].message(static_cast<size_t>(round)).second,
                std::to_string(i) + "/" + std::to_string(round));
    }
  }
}

TEST(TcpTransport, NextSendAfterServerRestartReconnects) {
  auto s = server();
  std::string address = s->address();
  Inbox server_inbox, client_inbox;
  s->set_handler(&server_inbox);
  auto c = make_transport("tcp");
  c->set_handler(&client_inbox);
  auto peer = c->lookup(address);
  ASSERT_TRUE(send_text(*c, peer, "first").ok());
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return server_inbox.count() == 1; }));
  s.reset();
  ASSERT_TRUE(drive({c.get()}, [&] { return client_inbox.lost_count() == 1; }));
  EXPECT_EQ(client_inbox.lost(0), peer);

  auto restarted = server(address);  // same port, new process state
  ASSERT_EQ(restarted->address(), address);
  Inbox restarted_inbox;
  restarted->set_handler(&restarted_inbox);
  ASSERT_TRUE(send_text(*c, peer, "second").ok());
  ASSERT_TRUE(drive({c.get(), restarted.get()}, [&] { return restarted_inbox.count() == 1; }));
  EXPECT_EQ(restarted_inbox.message(0).second, "second");
}

TEST(TcpTransport, SendToNobodyFailsOrReportsThePeerLost) {
  auto probe = server();
  std::string address = probe->address();
  probe.reset();  // the port is now closed
  auto c = make_transport("tcp");
  Inbox inbox;
  c->set_handler(&inbox);
  auto status = send_text(*c, c->lookup(address), "anyone?");
  if (status.ok()) {
    ASSERT_TRUE(drive({c.get()}, [&] { return inbox.lost_count() == 1; }));
  } else {
    EXPECT_EQ(status.code, Status::Code::kDisconnected);
  }
}

TEST(TcpTransport, PeerLossIsReported) {
  auto s = server();
  Inbox server_inbox;
  s->set_handler(&server_inbox);
  auto c = server();
  ASSERT_TRUE(send_text(*c, c->lookup(s->address()), "hi").ok());
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return server_inbox.count() == 1; }));
  PeerRef client_peer = server_inbox.message(0).first;
  c.reset();
  ASSERT_TRUE(drive({s.get()}, [&] { return server_inbox.lost_count() == 1; }));
  EXPECT_EQ(server_inbox.lost(0), client_peer);
}

TEST(TcpTransport, InterruptWakesAWaitingProgress) {
  auto s = server();
  std::atomic<bool> returned{false};
  auto start = std::chrono::steady_clock::now();
  std::thread waiter([&] {
    s->progress(std::chrono::seconds(10));
    returned = true;
  });
  std::this_thread::sleep_for(20ms);
  s->interrupt();
  waiter.join();
  EXPECT_TRUE(returned);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(TcpTransport, CloseIsIdempotentAndRefusesLaterSends) {
  auto s = server();
  auto c = make_transport("tcp");
  auto peer = c->lookup(s->address());
  c->close();
  c->close();
  EXPECT_EQ(send_text(*c, peer, "late").code, Status::Code::kShutdown);
  EXPECT_EQ(c->progress(0us), 0u);
}

TEST(TcpTransport, PeersOfOtherTransportsAreRejected) {
  auto a = make_transport("tcp");
  auto b = make_transport("tcp");
  auto s = server();
  EXPECT_EQ(send_text(*a, b->lookup(s->address()), "x").code, Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace dango::net
