// Messages over every transport (transport_suite.hpp): addresses, both directions, parts,
// large and empty messages, size limits, ordering, threads, many peers, batching, sleeping and
// waking, interrupt, reconnect, peer loss and close. Each transport's own file adds what only
// it does (address forms, wire format, settings).

#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "dango/common/error.hpp"
#include "net_test_util.hpp"
#include "transport_suite.hpp"

namespace dango::net {
namespace {

using namespace testing;

class TransportMessages : public OverNetTransports {
 protected:
  // A server echoing every message, and a client-only transport whose inbox gets the echoes.
  struct EchoServer {
    explicit EchoServer(const TransportMessages& test)
        : s(test.server()), c(test.client()), echo(*s), peer(c->lookup(s->address())) {
      s->set_handler(&echo);
      c->set_handler(&inbox);
    }
    std::unique_ptr<Transport> s, c;
    Echo echo;
    Inbox inbox;
    PeerRef peer;
  };
};

TEST_P(TransportMessages, ListeningAddressIsConcreteAndBareSchemeIsClientOnly) {
  auto s = server();
  EXPECT_EQ(s->scheme(), scheme());
  ASSERT_TRUE(s->address().starts_with(scheme() + "://")) << s->address();
  EXPECT_NE(s->address(), loopback()) << "the address actually bound, not the one asked for";
  auto other = server();
  EXPECT_NE(s->address(), other->address());
  EXPECT_TRUE(client()->address().empty());
}

TEST_P(TransportMessages, AddressOfAnotherTransportIsRefusedNamingIt) {
  auto c = client();
  const std::string foreign = scheme() == "tcp" ? "sm://somebody" : "tcp://127.0.0.1:1";
  try {
    c->lookup(foreign);
    ADD_FAILURE() << "no error for " << foreign;
  } catch (const NetworkError& e) {
    EXPECT_NE(std::string(e.what()).find(foreign), std::string::npos) << e.what();
  }
}

TEST_P(TransportMessages, FlowBothWaysAndRepliesFindTheSender) {
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
  // The sender announced its listening address: b's lookup finds the Peer messages come from.
  EXPECT_EQ(from, b->lookup(a->address()));
  ASSERT_TRUE(send_text(*b, from, "pong").ok());
  ASSERT_TRUE(drive({a.get(), b.get()}, [&] { return inbox_a.count() == 1; }));
  EXPECT_EQ(inbox_a.message(0).second, "pong");
  EXPECT_EQ(inbox_a.message(0).first, b_from_a);
}

TEST_P(TransportMessages, ClientOnlyPeerGetsRepliesAndPartsAreConcatenated) {
  EchoServer e(*this);
  auto& [s, c, echo, inbox, peer] = e;
  std::string x = "hello ", y = "world";
  std::span<const std::byte> parts[] = {bytes_of(x), bytes_of(y), {}};
  ASSERT_TRUE(c->send(peer, parts).ok());
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return inbox.count() == 1; }));
  EXPECT_EQ(inbox.message(0).second, "hello world");
  EXPECT_TRUE(inbox.message(0).first->address().starts_with(scheme() + "://"));
}

std::string pattern(size_t size, unsigned seed) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>(i * 131 + (i >> 12) + seed);
  return s;
}

TEST_P(TransportMessages, LargeAndEmptyMessagesArriveIntact) {
  EchoServer e(*this);
  auto& [s, c, echo, inbox, peer] = e;
  // 8 MiB is many packets (ofi), rings (sm) and socket buffers (tcp).
  const std::string big = pattern(8 << 20, 1);
  ASSERT_TRUE(send_text(*c, peer, big).ok());
  ASSERT_TRUE(send_text(*c, peer, "").ok());
  ASSERT_TRUE(send_text(*c, peer, big.substr(0, 300000)).ok());
  ASSERT_TRUE(send_text(*c, peer, "small").ok());
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return inbox.count() == 4; }));
  EXPECT_TRUE(inbox.message(0).second == big);
  EXPECT_EQ(inbox.message(1).second, "");
  EXPECT_TRUE(inbox.message(2).second == big.substr(0, 300000));
  EXPECT_EQ(inbox.message(3).second, "small");
}

TEST_P(TransportMessages, MessageOverTheLimitIsRefused) {
  auto c = client({.max_message_size = 1000});
  auto s = server();
  auto peer = c->lookup(s->address());
  std::string text(1001, 'x');
  EXPECT_EQ(send_text(*c, peer, text).code, Status::Code::kMessageTooLarge);
  EXPECT_TRUE(send_text(*c, peer, text.substr(1)).ok());
}

TEST_P(TransportMessages, ToOnePeerArriveInOrder) {
  auto s = server();
  auto c = client();
  Inbox inbox;
  s->set_handler(&inbox);
  ProgressThread progress(*s);
  auto peer = c->lookup(s->address());
  constexpr int kCount = 20000;
  for (int i = 0; i < kCount; ++i) {
    // Sizes vary so that frames straddle reads and records wrap around rings; every 1000th is
    // larger than a packet or a ring's share, and travels in pieces among the small ones.
    size_t pad = i % 1000 == 999 ? 600000 : static_cast<size_t>(i % 97);
    std::string text = std::to_string(i) + std::string(pad, '.');
    ASSERT_TRUE(send_text(*c, peer, text).ok());
    if (i % 64 == 0) c->progress(0us);
  }
  ASSERT_TRUE(drive(
      {c.get()}, [&] { return inbox.count() == kCount; }, 30s));
  for (int i = 0; i < kCount; ++i) {
    auto text = inbox.message(static_cast<size_t>(i)).second;
    ASSERT_EQ(text.substr(0, text.find('.')), std::to_string(i));
  }
}

TEST_P(TransportMessages, SendIsThreadSafeWhileProgressRuns) {
  auto s = server();
  auto c = client();
  Inbox inbox;
  s->set_handler(&inbox);
  ProgressThread server_progress(*s);
  ProgressThread client_progress(*c);
  auto peer = c->lookup(s->address());
  constexpr int kThreads = 4, kEach = 2000;
  constexpr size_t kLarge = 400000;
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        // Every 100th spans several packets or ring records: they must not interleave.
        std::string text = std::to_string(t) + ":" + std::to_string(i) + ":";
        if (i % 100 == 7) text += std::string(kLarge, 'L');
        EXPECT_TRUE(send_text(*c, peer, text).ok());
      }
    });
  }
  for (auto& th : senders) th.join();
  auto deadline = std::chrono::steady_clock::now() + 30s;
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
    ASSERT_EQ(text.size() - second - 1, n % 100 == 7 ? kLarge : 0u);
  }
}

TEST_P(TransportMessages, ServerServesManyPeers) {
  auto s = server();
  Echo echo(*s);
  s->set_handler(&echo);
  // Each ofi transport opens a fabric, a domain and an endpoint with its own provider threads:
  // fewer of them keep the test fast.
  const int kClients = scheme().starts_with("ofi+") ? 10 : 50, kEach = 20;
  std::vector<std::unique_ptr<Transport>> clients;
  std::vector<Inbox> inboxes(kClients);
  std::vector<Transport*> all{s.get()};
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(i % 2 ? client() : server());  // client-only and listening peers
    clients.back()->set_handler(&inboxes[static_cast<size_t>(i)]);
    all.push_back(clients.back().get());
  }
  for (int round = 0; round < kEach; ++round) {
    for (int i = 0; i < kClients; ++i) {
      auto& c = *clients[static_cast<size_t>(i)];
      ASSERT_TRUE(
          send_text(c, c.lookup(s->address()), std::to_string(i) + "/" + std::to_string(round))
              .ok());
    }
  }
  ASSERT_TRUE(drive(
      all,
      [&] {
        for (auto& inbox : inboxes) {
          if (inbox.count() < kEach) return false;
        }
        return true;
      },
      30s));
  for (int i = 0; i < kClients; ++i) {
    for (int round = 0; round < kEach; ++round) {
      EXPECT_EQ(inboxes[static_cast<size_t>(i)].message(static_cast<size_t>(round)).second,
                std::to_string(i) + "/" + std::to_string(round));
    }
  }
}

TEST_P(TransportMessages, BatchedMessagesLeaveWithTheNextFlush) {
  auto s = server();
  auto c = client();
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

TEST_P(TransportMessages, BatchedMessagesOfEverySizeArriveWholeAndInOrder) {
  auto s = server();
  auto c = client();
  Inbox inbox;
  s->set_handler(&inbox);
  auto peer = c->lookup(s->address());
  // Thousands of small ones (more than one packet's worth for a transport that packs them), with
  // empty and multi-packet ones among them.
  std::vector<std::string> sent;
  for (int i = 0; i < 3000; ++i) {
    if (i % 1000 == 500) {
      sent.push_back(std::string(100000 + i, static_cast<char>('a' + i % 26)));
    } else if (i % 1000 == 700) {
      sent.emplace_back();
    } else {
      sent.push_back("m" + std::to_string(i) + std::string(static_cast<size_t>(i % 50), 'x'));
    }
    std::span<const std::byte> parts[] = {bytes_of(sent.back())};
    ASSERT_TRUE(c->send(peer, parts, SendMode::kBatched).ok());
  }
  c->flush();
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return inbox.count() == sent.size(); }));
  for (size_t i = 0; i < sent.size(); ++i) EXPECT_EQ(inbox.message(i).second, sent[i]) << i;
}

TEST_P(TransportMessages, InterruptWakesAWaitingProgress) {
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

TEST_P(TransportMessages, ASleepingProgressWakesForEachMessage) {
  auto s = server();
  auto c = client();
  Inbox inbox;
  s->set_handler(&inbox);
  auto peer = c->lookup(s->address());
  ASSERT_TRUE(send_text(*c, peer, "hello").ok());  // connect first
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return inbox.count() == 1; }));
  for (size_t round = 0; round < 3; ++round) {
    std::atomic<bool> stop{false};
    std::thread sleeper([&] {
      while (!stop.load() && inbox.count() < round + 2) s->progress(std::chrono::seconds(10));
    });
    std::this_thread::sleep_for(20ms);  // let it go to sleep for real
    ASSERT_TRUE(send_text(*c, peer, "wake " + std::to_string(round)).ok());
    // Only the client is driven here: the server must wake by itself.
    bool arrived = drive({c.get()}, [&] { return inbox.count() == round + 2; });
    stop = true;
    s->interrupt();
    sleeper.join();
    ASSERT_TRUE(arrived);
    EXPECT_EQ(inbox.message(round + 1).second, "wake " + std::to_string(round));
  }
}

TEST_P(TransportMessages, WaitFdBecomesReadableWhenAMessageArrives) {
  auto s = server();
  if (s->wait_fd() < 0) GTEST_SKIP() << scheme() << " offers no wait descriptor";
  auto c = client();
  Inbox inbox;
  s->set_handler(&inbox);
  ASSERT_TRUE(send_text(*c, c->lookup(s->address()), "fd").ok());
  // The caller's loop of an engine sleeping on several transports: arm, sleep on the fd, poll.
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

TEST_P(TransportMessages, NextSendAfterServerRestartReconnects) {
  auto s = server();
  const std::string address = s->address();
  Inbox server_inbox, client_inbox;
  s->set_handler(&server_inbox);
  auto c = client({.connect_timeout = 1000ms});
  c->set_handler(&client_inbox);
  auto peer = c->lookup(address);
  ASSERT_TRUE(send_text(*c, peer, "first").ok());
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return server_inbox.count() == 1; }));
  s.reset();
  // Announced by the transport (a closed socket or segment), or found by a probe that gets no
  // answer (a fabric hides connections): either way within a few seconds.
  ASSERT_TRUE(drive({c.get()}, [&] { return client_inbox.lost_count() == 1; }));
  EXPECT_EQ(client_inbox.lost(0), peer);

  auto restarted = make_transport(address);  // same address, new process state
  ASSERT_EQ(restarted->address(), address);
  Inbox restarted_inbox;
  restarted->set_handler(&restarted_inbox);
  ASSERT_TRUE(send_text(*c, peer, "second").ok());
  ASSERT_TRUE(drive({c.get(), restarted.get()}, [&] { return restarted_inbox.count() == 1; }));
  EXPECT_EQ(restarted_inbox.message(0).second, "second");
}

TEST_P(TransportMessages, SendToNobodyFailsOrReportsThePeerLost) {
  auto probe = server();
  const std::string address = probe->address();
  probe.reset();  // nobody listens there now
  auto c = client({.connect_timeout = 1000ms});
  Inbox inbox;
  c->set_handler(&inbox);
  auto status = send_text(*c, c->lookup(address), "anyone?");
  if (status.ok()) {
    ASSERT_TRUE(drive({c.get()}, [&] { return inbox.lost_count() == 1; }));
  } else {
    EXPECT_EQ(status.code, Status::Code::kDisconnected);
  }
}

TEST_P(TransportMessages, PeerLossIsReported) {
  auto s = server({.connect_timeout = 1000ms});
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

TEST_P(TransportMessages, CloseIsIdempotentAndRefusesLaterSends) {
  auto s = server();
  auto c = client();
  auto peer = c->lookup(s->address());
  c->close();
  c->close();
  EXPECT_EQ(send_text(*c, peer, "late").code, Status::Code::kShutdown);
  EXPECT_EQ(c->progress(0us), 0u);
}

TEST_P(TransportMessages, PeersOfOtherTransportsAreRejected) {
  auto a = client();
  auto b = client();
  auto s = server();
  EXPECT_EQ(send_text(*a, b->lookup(s->address()), "x").code, Status::Code::kInvalidArgument);
}

DANGO_INSTANTIATE_OVER_NET_TRANSPORTS(TransportMessages);

}  // namespace
}  // namespace dango::net
