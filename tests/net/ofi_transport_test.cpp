// Messages over the ofi+tcp transport (libfabric tcp;ofi_rxm): addressing, provider choice, both
// directions, ordering, messages larger than a packet, many peers, threads, sleep and interrupt,
// close.

#include <gtest/gtest.h>
#include <poll.h>

#include <string>
#include <thread>

#include "dango/common/error.hpp"
#include "net_test_util.hpp"
#include "ofi_test_util.hpp"

namespace dango::net {
namespace {

using namespace testing;

std::unique_ptr<Transport> server(TransportOptions options = {}) {
  return make_transport("ofi+tcp://127.0.0.1:0", options);
}

std::string pattern(size_t size, unsigned seed) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>(i * 131 + seed + (i >> 12));
  return s;
}

TEST(OfiTransport, PortZeroReportsTheBoundPort) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
  auto t = server();
  EXPECT_EQ(t->scheme(), "ofi+tcp");
  ASSERT_TRUE(t->address().starts_with("ofi+tcp://127.0.0.1:")) << t->address();
  EXPECT_NE(t->address(), "ofi+tcp://127.0.0.1:0");
}

TEST(OfiTransport, BareSchemeIsClientOnly) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
  auto t = make_transport("ofi+tcp");
  EXPECT_TRUE(t->address().empty());
}

TEST(OfiTransport, MalformedAddressesThrowNamingTheAddress) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
  auto t = make_transport("ofi+tcp");
  for (const char* bad : {"ofi+tcp://127.0.0.1", "ofi+tcp://:80", "ofi+tcp://[::1:80",
                          "ofi+tcp://host:notaport", "tcp://127.0.0.1:80", "ofi+tcp"}) {
    try {
      t->lookup(bad);
      ADD_FAILURE() << "no error for " << bad;
    } catch (const NetworkError& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(make_transport("ofi+tcp://1.2.3:x"), NetworkError);
}

TEST(OfiTransport, MissingProviderErrorListsTheOfferedProviders) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
  for (const char* scheme : {"ofi+cxi", "ofi+efa", "ofi+verbs"}) {
    try {
      make_transport(scheme);
      continue;  // this machine has it
    } catch (const NetworkError& e) {
      std::string what = e.what();
      EXPECT_NE(what.find(scheme), std::string::npos) << what;
      EXPECT_NE(what.find("tcp;ofi_rxm"), std::string::npos) << "offered providers: " << what;
    }
  }
}

TEST(OfiTransport, MessagesFlowBothWaysAndRepliesFindTheSender) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
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
  EXPECT_EQ(from, b->lookup(a->address()));
  ASSERT_TRUE(send_text(*b, from, "pong").ok());
  ASSERT_TRUE(drive({a.get(), b.get()}, [&] { return inbox_a.count() == 1; }));
  EXPECT_EQ(inbox_a.message(0).second, "pong");
  EXPECT_EQ(inbox_a.message(0).first, b_from_a);
}

TEST(OfiTransport, ClientOnlyPeerGetsReplies) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
  auto s = server();
  auto c = make_transport("ofi+tcp");
  Echo echo(*s);
  Inbox inbox;
  s->set_handler(&echo);
  c->set_handler(&inbox);
  auto peer = c->lookup(s->address());
  std::string x = "hello ", y = "world";
  std::span<const std::byte> parts[] = {bytes_of(x), bytes_of(y), {}};
  ASSERT_TRUE(c->send(peer, parts).ok());
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return inbox.count() == 1; }));
  EXPECT_EQ(inbox.message(0).second, "hello world");
  EXPECT_TRUE(inbox.message(0).first->address().starts_with("ofi+tcp://"));
}

TEST(OfiTransport, MessagesLargerThanAPacketAndEmptyOnesArriveIntact) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
  auto s = server();
  auto c = make_transport("ofi+tcp");
  Echo echo(*s);
  Inbox inbox;
  s->set_handler(&echo);
  c->set_handler(&inbox);
  auto peer = c->lookup(s->address());
  const std::string big = pattern(8 << 20, 1);
  const std::string medium = pattern(100000, 2);
  ASSERT_TRUE(send_text(*c, peer, big).ok());
  ASSERT_TRUE(send_text(*c, peer, "").ok());
  ASSERT_TRUE(send_text(*c, peer, medium).ok());
  ASSERT_TRUE(send_text(*c, peer, "x").ok());
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return inbox.count() == 4; }));
  EXPECT_TRUE(inbox.message(0).second == big);
  EXPECT_EQ(inbox.message(1).second, "");
  EXPECT_TRUE(inbox.message(2).second == medium);
  EXPECT_EQ(inbox.message(3).second, "x");
}

TEST(OfiTransport, MessageOverTheLimitIsRefused) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
  auto c = make_transport("ofi+tcp", {.max_message_size = 1000});
  auto s = server();
  auto peer = c->lookup(s->address());
  std::string text(1001, 'x');
  EXPECT_EQ(send_text(*c, peer, text).code, Status::Code::kMessageTooLarge);
  EXPECT_TRUE(send_text(*c, peer, text.substr(1)).ok());
}

TEST(OfiTransport, ReceiverDropsMessagesOverItsLimit) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
  auto s = server({.max_message_size = 100000});
  auto c = make_transport("ofi+tcp");
  Inbox inbox;
  s->set_handler(&inbox);
  auto peer = c->lookup(s->address());
  ASSERT_TRUE(send_text(*c, peer, pattern(200000, 3)).ok());
  ASSERT_TRUE(send_text(*c, peer, "after").ok());
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return inbox.count() == 1; }));
  EXPECT_EQ(inbox.message(0).second, "after");
}

TEST(OfiTransport, MessagesToOnePeerArriveInOrder) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
  auto s = server();
  auto c = make_transport("ofi+tcp");
  Inbox inbox;
  s->set_handler(&inbox);
  ProgressThread progress(*s);
  auto peer = c->lookup(s->address());
  constexpr int kCount = 5000;
  for (int i = 0; i < kCount; ++i) {
    // Sizes vary, some over a packet, so that whole and split messages interleave.
    size_t pad = i % 500 == 7 ? 200000 : static_cast<size_t>(i % 97);
    std::string text = std::to_string(i) + std::string(pad, '.');
    ASSERT_TRUE(send_text(*c, peer, text).ok());
    if (i % 64 == 0) c->progress(0us);
  }
  ASSERT_TRUE(drive({c.get()}, [&] { return inbox.count() == kCount; }));
  for (int i = 0; i < kCount; ++i) {
    auto text = inbox.message(static_cast<size_t>(i)).second;
    ASSERT_EQ(text.substr(0, text.find('.')), std::to_string(i));
  }
}

TEST(OfiTransport, SendIsThreadSafeWhileProgressRuns) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
  auto s = server();
  auto c = make_transport("ofi+tcp");
  Inbox inbox;
  s->set_handler(&inbox);
  ProgressThread server_progress(*s);
  ProgressThread client_progress(*c);
  auto peer = c->lookup(s->address());
  constexpr int kThreads = 4, kEach = 1000;
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        // Every 100th message spans several packets: they must not interleave with others.
        std::string pad(i % 100 == 0 ? 150000 : 0, '#');
        EXPECT_TRUE(
            send_text(*c, peer, std::to_string(t) + ":" + std::to_string(i) + ":" + pad).ok());
      }
    });
  }
  for (auto& th : senders) th.join();
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (inbox.count() < kThreads * kEach && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(inbox.count(), size_t{kThreads * kEach});
  std::vector<int> next(kThreads, 0);
  for (size_t i = 0; i < inbox.count(); ++i) {
    auto text = inbox.message(i).second;
    auto first = text.find(':'), second = text.find(':', first + 1);
    int t = std::stoi(text.substr(0, first));
    int n = std::stoi(text.substr(first + 1, second - first - 1));
    ASSERT_EQ(n, next[static_cast<size_t>(t)]++) << "per-thread order broken";
    ASSERT_EQ(text.size() - second - 1, n % 100 == 0 ? 150000u : 0u);
  }
}

TEST(OfiTransport, ServesManyPeers) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
  auto s = server();
  Echo echo(*s);
  s->set_handler(&echo);
  constexpr int kClients = 10, kEach = 10;
  std::vector<std::unique_ptr<Transport>> clients;
  std::vector<Inbox> inboxes(kClients);
  std::vector<Transport*> all{s.get()};
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(make_transport(i % 2 ? "ofi+tcp" : "ofi+tcp://127.0.0.1:0"));
    clients.back()->set_handler(&inboxes[static_cast<size_t>(i)]);
    all.push_back(clients.back().get());
  }
  for (int round = 0; round < kEach; ++round) {
    for (int i = 0; i < kClients; ++i) {
      auto& client = *clients[static_cast<size_t>(i)];
      ASSERT_TRUE(send_text(client, client.lookup(s->address()),
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

TEST(OfiTransport, BatchedMessagesLeaveWithTheNextFlush) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
  auto s = server();
  auto c = make_transport("ofi+tcp");
  Inbox inbox;
  s->set_handler(&inbox);
  auto peer = c->lookup(s->address());
  for (int i = 0; i < 10; ++i) {
    std::string text = "b" + std::to_string(i);
    std::span<const std::byte> parts[] = {bytes_of(text)};
    ASSERT_TRUE(c->send(peer, parts, SendMode::kBatched).ok());
  }
  c->flush();
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return inbox.count() == 10; }));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(inbox.message(i).second, "b" + std::to_string(i));
}

TEST(OfiTransport, InterruptWakesAWaitingProgress) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
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

TEST(OfiTransport, SleepingProgressWakesForAMessage) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
  auto s = server();
  auto c = make_transport("ofi+tcp");
  Inbox inbox;
  s->set_handler(&inbox);
  std::atomic<bool> stop{false};
  std::thread sleeper([&] {
    while (!stop.load() && inbox.count() == 0) s->progress(std::chrono::seconds(10));
  });
  auto peer = c->lookup(s->address());
  ASSERT_TRUE(send_text(*c, peer, "wake up").ok());
  // Only the client is driven here: the server must wake by itself.
  bool arrived = drive({c.get()}, [&] { return inbox.count() == 1; });
  stop = true;
  s->interrupt();
  sleeper.join();
  ASSERT_TRUE(arrived);
  EXPECT_EQ(inbox.message(0).second, "wake up");
}

TEST(OfiTransport, WaitFdBecomesReadableWhenAMessageArrives) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
  auto s = server();
  if (s->wait_fd() < 0) GTEST_SKIP() << "provider has no wait object";
  auto c = make_transport("ofi+tcp");
  Inbox inbox;
  s->set_handler(&inbox);
  ASSERT_TRUE(send_text(*c, c->lookup(s->address()), "fd").ok());
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (inbox.count() == 0 && std::chrono::steady_clock::now() < deadline) {
    c->progress(0us);
    if (s->prepare_wait()) {
      pollfd p{s->wait_fd(), POLLIN, 0};
      ::poll(&p, 1, 10);
    }
    s->progress(0us);
  }
  EXPECT_EQ(inbox.count(), 1u);
}

TEST(OfiTransport, CloseIsIdempotentAndRefusesLaterSends) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
  auto s = server();
  auto c = make_transport("ofi+tcp");
  auto peer = c->lookup(s->address());
  c->close();
  c->close();
  EXPECT_EQ(send_text(*c, peer, "late").code, Status::Code::kShutdown);
  EXPECT_EQ(c->progress(0us), 0u);
}

TEST(OfiTransport, PeersOfOtherTransportsAreRejected) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
  auto a = make_transport("ofi+tcp");
  auto b = make_transport("ofi+tcp");
  auto s = server();
  EXPECT_EQ(send_text(*a, b->lookup(s->address()), "x").code, Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace dango::net
