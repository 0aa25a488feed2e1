// Every transport (transport_suite.hpp) across real processes: a server in another process
// serves messages and bulk transfers; a killed server is reported lost, fails later operations,
// and one restarted at the same address answers; a killed client is reported lost to the server;
// a client killed in the middle of a conversation does not hold up the server's replies to the
// others; and a get whose completion was reported never writes the local memory afterwards, even
// when the server froze with the transfer in flight and comes back after being given up. The children are this test program re-executed (child_process.hpp).

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define DANGO_TEST_ASAN 1
#endif

#include "child_process.hpp"
#include "net_test_util.hpp"
#include "transport_suite.hpp"

namespace dango::net {
namespace {

using namespace testing;

constexpr size_t kRegionSize = size_t{16} << 20;

std::byte pattern_byte(size_t i) { return static_cast<std::byte>((i * 7) ^ (i >> 13)); }

// Makes writes to `bytes` an error under AddressSanitizer (a no-op elsewhere).
void poison([[maybe_unused]] std::span<std::byte> bytes) {
#ifdef DANGO_TEST_ASAN
  ASAN_POISON_MEMORY_REGION(bytes.data(), bytes.size());
#endif
}
void unpoison([[maybe_unused]] std::span<std::byte> bytes) {
#ifdef DANGO_TEST_ASAN
  ASAN_UNPOISON_MEMORY_REGION(bytes.data(), bytes.size());
#endif
}

void announce(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

// The child server's handler: echoes messages; "region?" is answered with the descriptor of a
// 16 MiB region filled with pattern_byte; "quit" is echoed, then the child exits.
class ChildServer : public MessageHandler {
 public:
  explicit ChildServer(Transport& t) : transport_(t) {
    region_ = t.allocate_memory(kRegionSize, Access::kReadWrite);
    auto bytes = region_->segments()[0];
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = pattern_byte(i);
  }
  void on_message(const PeerRef& from, std::span<const std::byte> message) override {
    std::string_view text(reinterpret_cast<const char*>(message.data()), message.size());
    std::vector<std::byte> descriptor;
    std::span<const std::byte> reply = message;
    if (text == "region?") {
      descriptor = region_->descriptor();
      reply = descriptor;
    }
    if (text == "quit") quit = true;
    std::span<const std::byte> parts[] = {reply};
    transport_.send(from, parts);
  }
  void on_peer_lost(const PeerRef&) override {}
  bool quit = false;

 private:
  Transport& transport_;
  std::unique_ptr<MemoryRegion> region_;
};

// Runs only as a child process started by the tests below. Roles:
//   "serve <address>"  a ChildServer listening at <address>; prints "address=<bound address>";
//   "client <address>" greets that server, prints "address=client", then keeps progressing;
//   "converse <address>" keeps four 64 KiB messages to that server in flight, sending one more
//                      for each echo, without end; prints "address=conversing" after the first.
TEST(NetChildProcess, Run) {
  auto role = child_role();
  if (!role) GTEST_SKIP() << "runs only as a child process of the transport process tests";
  const auto space = role->find(' ');
  const std::string what = role->substr(0, space), address = role->substr(space + 1);
  if (what == "serve") {
    auto t = make_transport(address);
    ChildServer handler(*t);
    t->set_handler(&handler);
    announce("address=" + t->address());
    while (!handler.quit) t->progress(std::chrono::milliseconds(100));
    for (int i = 0; i < 20; ++i) t->progress(std::chrono::milliseconds(1));  // the last echo
    std::_Exit(0);
  }
  auto t = make_transport(split_address(address).first);
  Inbox inbox;
  t->set_handler(&inbox);
  auto server = t->lookup(address);
  if (what == "client") {
    send_text(*t, server, "hello from a child");
    announce("address=client");
    for (;;) t->progress(std::chrono::milliseconds(100));
  }
  const std::string payload(64 << 10, 'c');
  for (int i = 0; i < 4; ++i) send_text(*t, server, payload);
  drive({t.get()}, [&] { return inbox.count() > 0; });
  announce("address=conversing");
  for (size_t answered = 0;;) {
    t->progress(std::chrono::milliseconds(1));
    for (; answered < inbox.count(); ++answered) send_text(*t, server, payload);
  }
}

class TransportProcesses : public OverNetTransports {
 public:
  using OverNetTransports::client;
  using OverNetTransports::loopback;
  std::unique_ptr<ChildProcess> start_child(const std::string& role) {
    return std::make_unique<ChildProcess>("NetChildProcess.Run", role);
  }
};

// Asks the child server for its region's descriptor and reads the whole region into `local`.
Status get_region(Transport& t, const PeerRef& server, Inbox& inbox, MemoryRegion& local) {
  size_t before = inbox.count(), lost_before = inbox.lost_count();
  if (auto s = send_text(t, server, "region?"); !s.ok()) return s;
  if (!drive({&t}, [&] { return inbox.count() > before || inbox.lost_count() > lost_before; })) {
    return {Status::Code::kDisconnected, "no descriptor"};
  }
  if (inbox.count() == before) return {Status::Code::kDisconnected, "peer lost"};
  std::string descriptor = inbox.message(before).second;
  Done done;
  t.get(server, bytes_of(descriptor), 0, local, 0, kRegionSize, &done);
  drive(
      {&t}, [&] { return done.fired(); }, std::chrono::seconds(30));
  return done.fired() ? done.status() : Status{Status::Code::kDisconnected, "get hangs"};
}

TEST_P(TransportProcesses, ClientTalksToAServerInAnotherProcess) {
  auto child = start_child("serve " + loopback());
  const std::string address = child->read_address();
  ASSERT_TRUE(address.starts_with(scheme() + "://")) << address;
  auto t = client({.connect_timeout = 1000ms});
  Inbox inbox;
  t->set_handler(&inbox);
  auto server = t->lookup(address);
  constexpr int kCount = 1000;
  const std::string big(3 << 20, 'B');
  for (int i = 0; i < kCount; ++i) {
    ASSERT_TRUE(send_text(*t, server, i == 500 ? big : std::to_string(i)).ok());
  }
  ASSERT_TRUE(drive(
      {t.get()}, [&] { return inbox.count() == kCount; }, 30s));
  for (int i = 0; i < kCount; ++i) {
    EXPECT_TRUE(inbox.message(static_cast<size_t>(i)).second ==
                (i == 500 ? big : std::to_string(i)))
        << "message " << i;
  }

  auto local = t->allocate_memory(kRegionSize, Access::kReadWrite);
  Status s = get_region(*t, server, inbox, *local);
  ASSERT_TRUE(s.ok()) << s.message;
  auto bytes = local->segments()[0];
  for (size_t i = 0; i < bytes.size(); i += 4093) ASSERT_EQ(bytes[i], pattern_byte(i)) << i;
  // A put into the child's region, read back.
  const std::string descriptor = inbox.message(inbox.count() - 1).second;
  for (auto& b : bytes) b = std::byte{0x42};
  Done put;
  t->put(server, bytes_of(descriptor), 4096, *local, 0, kRegionSize - 4096, &put);
  ASSERT_TRUE(drive(
      {t.get()}, [&] { return put.fired(); }, 30s));
  ASSERT_TRUE(put.status().ok()) << put.status().message;
  for (auto& b : bytes) b = std::byte{0};
  Done get;
  t->get(server, bytes_of(descriptor), 0, *local, 0, kRegionSize, &get);
  ASSERT_TRUE(drive(
      {t.get()}, [&] { return get.fired(); }, 30s));
  ASSERT_TRUE(get.status().ok()) << get.status().message;
  EXPECT_EQ(bytes[4095], pattern_byte(4095));
  EXPECT_EQ(bytes[4096], std::byte{0x42});
  EXPECT_EQ(bytes[kRegionSize - 1], std::byte{0x42});

  ASSERT_TRUE(send_text(*t, server, "quit").ok());
  EXPECT_EQ(child->wait_exit(), 0);
  ASSERT_TRUE(drive({t.get()}, [&] { return inbox.lost_count() == 1; }));
}

TEST_P(TransportProcesses, KilledServerIsReportedLostAndOneRestartedAtTheSameAddressAnswers) {
  auto t = client({.connect_timeout = 1000ms});
  Inbox inbox;
  t->set_handler(&inbox);
  std::string address = loopback();
  PeerRef server;
  // Used in both lives (a get completes only once the transport is done with this memory).
  auto local = t->allocate_memory(kRegionSize, Access::kReadWrite);
  for (int life = 0; life < 2; ++life) {
    auto child = start_child("serve " + address);
    const std::string bound = child->read_address();
    if (life == 0) {
      address = bound;
      server = t->lookup(address);
    }
    ASSERT_EQ(bound, address) << "the restarted server binds the same address";
    const size_t before = inbox.count();
    const std::string hello = "life " + std::to_string(life);
    ASSERT_TRUE(send_text(*t, server, hello).ok());
    ASSERT_TRUE(drive(
        {t.get()}, [&] { return inbox.count() > before; }, 15s));
    EXPECT_EQ(inbox.message(before).second, hello) << "nothing sent to an earlier life reappears";
    Status s = get_region(*t, server, inbox, *local);
    ASSERT_TRUE(s.ok()) << s.message;
    const std::string descriptor = inbox.message(inbox.count() - 1).second;

    child->kill();
    // A request whose answer will never come: the loss must be reported instead of a hang.
    ASSERT_TRUE(send_text(*t, server, "anyone?").ok() || inbox.lost_count() > size_t(life));
    ASSERT_TRUE(drive({t.get()}, [&] { return inbox.lost_count() == size_t(life) + 1; }));
    EXPECT_EQ(inbox.lost(static_cast<size_t>(life)), server);
    Done done;
    t->get(server, bytes_of(descriptor), 0, *local, 0, 4096, &done);
    ASSERT_TRUE(drive({t.get()}, [&] { return done.fired(); }));
    EXPECT_EQ(done.status().code, Status::Code::kDisconnected) << done.status().message;
  }
}

// What happens to a server frozen (SIGSTOP) with a get from it in flight, once the client has
// waited long enough to give it up.
enum class Thaw { kResume, kKill };

// Runs a 16 MiB get from a frozen server into caller-owned memory, thaws the server as told, and
// returns the get's status; fails the test if the memory is written once the get has completed
// (the caller has taken the memory back by then). Under AddressSanitizer the memory is poisoned
// from that point, so that the write is also reported where it happens.
Status get_from_frozen_server(TransportProcesses& test, Thaw thaw) {
  auto child = test.start_child("serve " + test.loopback());
  const std::string address = child->read_address();
  auto t = test.client({.connect_timeout = 500ms});
  Inbox inbox;
  t->set_handler(&inbox);
  auto server = t->lookup(address);
  EXPECT_TRUE(send_text(*t, server, "region?").ok());
  if (!drive({t.get()}, [&] { return inbox.count() == 1; })) return {};
  const std::string descriptor = inbox.message(0).second;

  auto memory = std::make_unique<std::byte[]>(kRegionSize);
  std::span<std::byte> bytes(memory.get(), kRegionSize);
  auto region = t->register_memory({&bytes, 1}, Access::kReadWrite);
  constexpr std::byte kUntouched{0xEE};
  auto take_memory_back = [&] {
    region.reset();
    std::fill(bytes.begin(), bytes.end(), kUntouched);
    poison(bytes);
  };
  // Frozen before the get: whatever the transport does meanwhile, the request stays unanswered.
  child->signal(SIGSTOP);
  Done done;
  t->get(server, bytes_of(descriptor), 0, *region, 0, kRegionSize, &done);
  // Until the transport gives the server up (or finishes, for a transport that reads the memory
  // without the server's help).
  drive(
      {t.get()}, [&] { return done.fired() || inbox.lost_count() > 0; }, 6s);
  const bool completed_while_frozen = done.fired();
  if (completed_while_frozen) take_memory_back();
  if (thaw == Thaw::kResume) {
    child->signal(SIGCONT);  // the server answers what it was asked before it froze
  } else {
    child->kill();
  }
  EXPECT_TRUE(drive(
      {t.get()}, [&] { return done.fired(); }, 30s))
      << "the get never completed";
  if (!completed_while_frozen) take_memory_back();
  if (thaw == Thaw::kResume) {
    // Whatever the server still sends for the old request arrives before this round trip ends.
    const size_t before = inbox.count();
    EXPECT_TRUE(send_text(*t, server, "still there?").ok());
    drive(
        {t.get()}, [&] { return inbox.count() > before; }, 10s);
  }
  drive(
      {t.get()}, [] { return false; }, 300ms);
  unpoison(bytes);
  const auto written =
      std::find_if(bytes.begin(), bytes.end(), [&](std::byte b) { return b != kUntouched; });
  EXPECT_EQ(written, bytes.end()) << "byte " << (written - bytes.begin())
                                  << " written after the get completed with \""
                                  << done.status().message << "\"";
  EXPECT_EQ(done.calls(), 1);
  return completed_while_frozen ? Status::Ok() : done.status();
}

TEST_P(TransportProcesses, GetFromAFrozenServerNeverWritesTheMemoryAfterItsCompletion) {
  get_from_frozen_server(*this, Thaw::kResume);
}

TEST_P(TransportProcesses, GetFromAFrozenServerThenKilledCompletesDisconnected) {
  Status s = get_from_frozen_server(*this, Thaw::kKill);
  if (!s.ok()) {
    EXPECT_EQ(s.code, Status::Code::kDisconnected) << s.message;
  }
}

TEST_P(TransportProcesses, ServerReportsAKilledClient) {
  auto s = server({.connect_timeout = 1000ms});
  Inbox inbox;
  s->set_handler(&inbox);
  auto child = start_child("client " + s->address());
  ASSERT_EQ(child->read_address(), "client");
  ASSERT_TRUE(drive({s.get()}, [&] { return inbox.count() == 1; }));
  PeerRef client_peer = inbox.message(0).first;
  EXPECT_NE(client_peer->address().find("(client"), std::string::npos) << client_peer->address();
  child->kill();
  ASSERT_TRUE(drive({s.get()}, [&] { return inbox.lost_count() == 1; }));
  EXPECT_EQ(inbox.lost(0), client_peer);
}

TEST_P(TransportProcesses, ClientKilledMidConversationDoesNotHoldUpRepliesToOthers) {
  // The server keeps its default connect_timeout (5 s): each round trip below must complete well
  // within it, so a stall that only the liveness probe of the dead client would end fails here.
  auto s = server();
  Echo echo(*s);
  s->set_handler(&echo);
  ProgressThread progress(*s);
  auto other = start_child("converse " + s->address());
  ASSERT_EQ(other->read_address(), "conversing");

  auto c = client();
  Inbox inbox;
  c->set_handler(&inbox);
  auto peer = c->lookup(s->address());
  auto round_trip = [&](int i) {
    const size_t before = inbox.count();
    const std::string text = "ping " + std::to_string(i) + std::string(i % 7 == 0 ? 70000 : 0, '.');
    if (!send_text(*c, peer, text).ok()) return false;
    return drive(
               {c.get()}, [&] { return inbox.count() > before; }, 4s) &&
           inbox.message(before).second == text;
  };
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(round_trip(i)) << "before the kill, round trip " << i;
  other->kill();  // SIGKILL while its messages and the echoes to it are in flight
  for (int i = 20; i < 220; ++i) ASSERT_TRUE(round_trip(i)) << "after the kill, round trip " << i;
  EXPECT_EQ(inbox.lost_count(), 0u);
  // And the dead client is reported lost in the end.
  auto deadline = std::chrono::steady_clock::now() + 15s;
  while (echo.lost.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(round_trip(0));
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_GE(echo.lost.load(), 1u);
}

DANGO_INSTANTIATE_OVER_NET_TRANSPORTS(TransportProcesses);

}  // namespace
}  // namespace dango::net
