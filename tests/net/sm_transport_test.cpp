// Messages over the sm transport: addressing, both directions, ordering, large messages, many
// peers, threads, sleeping and waking, reconnect, peer loss, close and interrupt.

#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>

#include "dango/common/error.hpp"
#include "net_test_util.hpp"
#include "sm_test_util.hpp"

namespace dango::net {
namespace {

using namespace testing;

std::unique_ptr<Transport> server(std::string_view address = "sm://",
                                  TransportOptions options = {}) {
  return make_transport(address, options);
}

std::string pattern(size_t size, unsigned seed) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>(i * 131 + (i >> 12) + seed);
  return s;
}

TEST(SmTransport, NamedAndUnnamedAddressesAreReported) {
  auto named = server("sm://sm-test-named-" + std::to_string(::getpid()));
  EXPECT_EQ(named->scheme(), "sm");
  EXPECT_EQ(named->address(), "sm://sm-test-named-" + std::to_string(::getpid()));
  auto a = server();
  auto b = server();
  ASSERT_TRUE(a->address().starts_with("sm://")) << a->address();
  EXPECT_NE(a->address(), "sm://");
  EXPECT_NE(a->address(), b->address()) << "unnamed transports get unique names";
}

TEST(SmTransport, BareSchemeIsClientOnly) {
  auto t = make_transport("sm");
  EXPECT_TRUE(t->address().empty());
}

TEST(SmTransport, MalformedAddressesThrowNamingTheAddress) {
  auto t = make_transport("sm");
  for (const char* bad : {"sm://a/b", "sm://", "sm://.hidden", "tcp://127.0.0.1:1", "sm:x"}) {
    try {
      t->lookup(bad);
      ADD_FAILURE() << "no error for " << bad;
    } catch (const NetworkError& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(make_transport("sm://bad name"), NetworkError);
}

TEST(SmTransport, ANameHeldByALiveTransportIsRefused) {
  std::string address = "sm://sm-test-taken-" + std::to_string(::getpid());
  auto first = server(address);
  try {
    server(address);
    ADD_FAILURE() << "two transports hold " << address;
  } catch (const NetworkError& e) {
    EXPECT_NE(std::string(e.what()).find("in use"), std::string::npos) << e.what();
  }
}

TEST(SmTransport, MessagesFlowBothWaysOverOneConnectionPerPair) {
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

TEST(SmTransport, ClientOnlyPeerGetsRepliesOnItsConnection) {
  auto s = server();
  auto c = make_transport("sm");
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
}

TEST(SmTransport, LargeAndEmptyMessagesArriveIntact) {
  auto s = server();
  auto c = make_transport("sm");
  Echo echo(*s);
  Inbox inbox;
  s->set_handler(&echo);
  c->set_handler(&inbox);
  auto peer = c->lookup(s->address());
  // 8 MiB is eight times a ring: it travels in fragments, written as the reader makes room.
  std::string big = pattern(8 << 20, 1);
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

TEST(SmTransport, MessageOverTheLimitIsRefused) {
  auto c = make_transport("sm", {.max_message_size = 1000});
  auto s = server();
  auto peer = c->lookup(s->address());
  std::string text(1001, 'x');
  EXPECT_EQ(send_text(*c, peer, text).code, Status::Code::kMessageTooLarge);
  EXPECT_TRUE(send_text(*c, peer, text.substr(1)).ok());
}

TEST(SmTransport, MessagesToOnePeerArriveInOrder) {
  auto s = server();
  auto c = make_transport("sm");
  Inbox inbox;
  s->set_handler(&inbox);
  ProgressThread progress(*s);
  auto peer = c->lookup(s->address());
  constexpr int kCount = 20000;
  for (int i = 0; i < kCount; ++i) {
    // Sizes vary so that records wrap around the ring; every 1000th is fragmented.
    size_t pad = i % 1000 == 999 ? 600000 : static_cast<size_t>(i % 97);
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

TEST(SmTransport, SendIsThreadSafeWhileProgressRuns) {
  auto s = server();
  auto c = make_transport("sm");
  Inbox inbox;
  s->set_handler(&inbox);
  ProgressThread server_progress(*s);
  ProgressThread client_progress(*c);
  auto peer = c->lookup(s->address());
  constexpr int kThreads = 4, kEach = 3000;
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        std::string text = std::to_string(t) + ":" + std::to_string(i) + ":";
        if (i % 500 == 7) text += std::string(400000, 'L');  // fragmented among small ones
        EXPECT_TRUE(send_text(*c, peer, text).ok());
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
    auto colon = text.find(':');
    int t = std::stoi(text.substr(0, colon));
    int n = std::stoi(text.substr(colon + 1));
    ASSERT_EQ(n, next[static_cast<size_t>(t)]++) << "per-thread order broken";
    if (n % 500 == 7) {
      ASSERT_EQ(text.size(), text.find(':', colon + 1) + 1 + 400000);
    }
  }
}

TEST(SmTransport, ServesManyPeers) {
  auto s = server();
  Echo echo(*s);
  s->set_handler(&echo);
  constexpr int kClients = 40, kEach = 20;
  std::vector<std::unique_ptr<Transport>> clients;
  std::vector<Inbox> inboxes(kClients);
  std::vector<Transport*> all{s.get()};
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(make_transport(i % 2 ? "sm" : "sm://"));
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

TEST(SmTransport, ASleepingProgressWakesForAMessage) {
  auto s = server();
  auto c = make_transport("sm");
  Inbox inbox;
  s->set_handler(&inbox);
  auto peer = c->lookup(s->address());
  ASSERT_TRUE(send_text(*c, peer, "hello").ok());  // connect first
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return inbox.count() == 1; }));
  for (int round = 0; round < 3; ++round) {
    std::atomic<bool> asleep{false};
    std::thread receiver([&] {
      asleep = true;
      while (inbox.count() < static_cast<size_t>(round) + 2) s->progress(10s);
    });
    while (!asleep) std::this_thread::yield();
    std::this_thread::sleep_for(20ms);  // let it go to sleep for real
    ASSERT_TRUE(send_text(*c, peer, "wake " + std::to_string(round)).ok());
    receiver.join();  // returns only if the message woke it (the sleep would last 10 s)
    EXPECT_EQ(inbox.message(static_cast<size_t>(round) + 1).second,
              "wake " + std::to_string(round));
  }
}

TEST(SmTransport, WaitFdBecomesReadableWhenAMessageArrives) {
  auto s = server();
  auto c = make_transport("sm");
  Inbox inbox;
  s->set_handler(&inbox);
  auto peer = c->lookup(s->address());
  ASSERT_TRUE(send_text(*c, peer, "connect").ok());
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return inbox.count() == 1; }));
  ASSERT_GE(s->wait_fd(), 0);
  ASSERT_TRUE(s->prepare_wait());
  pollfd pfd{s->wait_fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&pfd, 1, 0), 0) << "nothing to do yet";
  ASSERT_TRUE(send_text(*c, peer, "now").ok());
  ASSERT_EQ(::poll(&pfd, 1, 10000), 1);
  s->progress(0us);
  EXPECT_EQ(inbox.count(), 2u);
  // The wake-up was consumed with the message: the caller can sleep again.
  ASSERT_TRUE(s->prepare_wait());
  EXPECT_EQ(::poll(&pfd, 1, 0), 0);
  s->progress(0us);
  // A message already waiting: prepare_wait says so instead of letting the caller sleep.
  ASSERT_TRUE(send_text(*c, peer, "pending").ok());
  EXPECT_FALSE(s->prepare_wait());
  s->progress(0us);
  EXPECT_EQ(inbox.count(), 3u);
}

TEST(SmTransport, InterruptWakesAWaitingProgress) {
  auto s = server();
  auto start = std::chrono::steady_clock::now();
  std::thread waiter([&] { s->progress(std::chrono::seconds(10)); });
  std::this_thread::sleep_for(20ms);
  s->interrupt();
  waiter.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(SmTransport, NextSendAfterServerRestartReconnects) {
  auto s = server();
  std::string address = s->address();
  Inbox server_inbox, client_inbox;
  s->set_handler(&server_inbox);
  auto c = make_transport("sm");
  c->set_handler(&client_inbox);
  auto peer = c->lookup(address);
  ASSERT_TRUE(send_text(*c, peer, "first").ok());
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return server_inbox.count() == 1; }));
  s.reset();
  ASSERT_TRUE(drive({c.get()}, [&] { return client_inbox.lost_count() == 1; }));
  EXPECT_EQ(client_inbox.lost(0), peer);

  auto restarted = server(address);
  ASSERT_EQ(restarted->address(), address);
  Inbox restarted_inbox;
  restarted->set_handler(&restarted_inbox);
  ASSERT_TRUE(send_text(*c, peer, "second").ok());
  ASSERT_TRUE(drive({c.get(), restarted.get()}, [&] { return restarted_inbox.count() == 1; }));
  EXPECT_EQ(restarted_inbox.message(0).second, "second");
}

TEST(SmTransport, SendToNobodyFails) {
  auto probe = server();
  std::string address = probe->address();
  probe.reset();
  auto c = make_transport("sm");
  auto status = send_text(*c, c->lookup(address), "anyone?");
  EXPECT_EQ(status.code, Status::Code::kDisconnected);
  EXPECT_NE(status.message.find(address), std::string::npos) << status.message;
}

TEST(SmTransport, PeerLossIsReported) {
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

TEST(SmTransport, CloseIsIdempotentRefusesLaterSendsAndRemovesItsFiles) {
  TempDir dir;
  ScopedEnv env("DANGO_SM_DIR", dir.path());
  auto s = server("sm://closing");
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/closing.sock"));
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/closing.lock"));
  auto c = make_transport("sm");
  auto peer = c->lookup(s->address());
  c->close();
  c->close();
  EXPECT_EQ(send_text(*c, peer, "late").code, Status::Code::kShutdown);
  EXPECT_EQ(c->progress(0us), 0u);
  s->close();
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/closing.sock"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/closing.lock"));
}

TEST(SmTransport, SmallRingsAndABusyPollWindowWork) {
  ScopedEnv ring("DANGO_SM_RING_SIZE", "65536");
  ScopedEnv poll("DANGO_SM_BUSY_POLL_US", "2000");
  auto s = server();
  auto c = make_transport("sm");
  Echo echo(*s);
  Inbox inbox;
  s->set_handler(&echo);
  c->set_handler(&inbox);
  auto peer = c->lookup(s->address());
  std::string big = pattern(1 << 20, 3);  // sixty-four rings' worth
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(send_text(*c, peer, big).ok());
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return inbox.count() == 3; }));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(inbox.message(static_cast<size_t>(i)).second == big);
  std::thread sender([&] {
    std::this_thread::sleep_for(1ms);
    EXPECT_TRUE(send_text(*c, peer, "during the window").ok());
  });
  while (echo.echoed < 4) s->progress(10s);
  sender.join();
}

TEST(SmTransport, MalformedSettingsAreRefusedNamingTheVariable) {
  for (auto [name, value] :
       {std::pair{"DANGO_SM_RING_SIZE", "12345"}, std::pair{"DANGO_SM_RING_SIZE", "1M"},
        std::pair{"DANGO_SM_BUSY_POLL_US", "-1"}}) {
    ScopedEnv env(name, value);
    try {
      make_transport("sm");
      ADD_FAILURE() << name << "=" << value << " accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
}

TEST(SmTransport, PeersOfOtherTransportsAreRejected) {
  auto a = make_transport("sm");
  auto b = make_transport("sm");
  auto s = server();
  EXPECT_EQ(send_text(*a, b->lookup(s->address()), "x").code, Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace dango::net
