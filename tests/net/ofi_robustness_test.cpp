// The ofi+tcp transport facing real processes and hostile input: a server in another process, a
// peer killed with SIGKILL (reported lost, pending operations failed), a peer restarted at the
// same address (reachable again), and malformed packets (dropped, nothing else disturbed).

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstdio>
#include <cstring>
#include <random>

#include "net_test_util.hpp"
#include "ofi_test_util.hpp"

namespace dango::net {
namespace {

using namespace testing;

constexpr size_t kRegionSize = size_t{16} << 20;

std::byte pattern_byte(size_t i) { return static_cast<std::byte>((i * 7) ^ (i >> 13)); }

// The child's handler: echoes messages; "region?" is answered with the descriptor of a 16 MiB
// region filled with pattern_byte.
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
    std::span<const std::byte> parts[] = {reply};
    transport_.send(from, parts);
  }
  void on_peer_lost(const PeerRef&) override {}

 private:
  Transport& transport_;
  std::unique_ptr<MemoryRegion> region_;
};

// Runs only as a child process started by the tests below (ChildProcess): a server at the
// address in the role ("ofi+tcp://127.0.0.1:0" or a fixed port) that prints its address, or
// ("client <address>") a client that greets that server and keeps progressing.
TEST(OfiChildProcess, Serve) {
  auto role = child_role();
  if (!role) GTEST_SKIP() << "runs only as a child process of the ofi robustness tests";
  if (role->starts_with("client ")) {
    auto t = make_transport("ofi+tcp");
    Inbox inbox;
    t->set_handler(&inbox);
    auto server = t->lookup(role->substr(7));
    send_text(*t, server, "hello from a child");
    std::printf("address=client\n");
    std::fflush(stdout);
    for (;;) t->progress(std::chrono::milliseconds(100));
  }
  auto t = make_transport(*role);
  ChildServer handler(*t);
  t->set_handler(&handler);
  std::printf("address=%s\n", t->address().c_str());
  std::fflush(stdout);
  for (;;) t->progress(std::chrono::milliseconds(100));
}

std::unique_ptr<ChildProcess> start_server(const std::string& address, std::string* bound) {
  auto child = std::make_unique<ChildProcess>("OfiChildProcess.Serve", address);
  *bound = child->read_address();
  return child;
}

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
  drive({&t}, [&] { return done.fired(); }, std::chrono::seconds(30));
  return done.fired() ? done.status() : Status{Status::Code::kDisconnected, "get hangs"};
}

TEST(OfiRobustness, TalksToAServerInAnotherProcess) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
  std::string address;
  auto child = start_server("ofi+tcp://127.0.0.1:0", &address);
  ASSERT_TRUE(address.starts_with("ofi+tcp://127.0.0.1:")) << address;
  auto t = make_transport("ofi+tcp");
  Inbox inbox;
  t->set_handler(&inbox);
  auto server = t->lookup(address);
  std::string big(3 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i % 251);
  ASSERT_TRUE(send_text(*t, server, "small").ok());
  ASSERT_TRUE(send_text(*t, server, big).ok());
  ASSERT_TRUE(drive({t.get()}, [&] { return inbox.count() == 2; }));
  EXPECT_EQ(inbox.message(0).second, "small");
  EXPECT_TRUE(inbox.message(1).second == big);

  auto local = t->allocate_memory(kRegionSize, Access::kReadWrite);
  Status s = get_region(*t, server, inbox, *local);
  ASSERT_TRUE(s.ok()) << s.message;
  auto bytes = local->segments()[0];
  for (size_t i = 0; i < bytes.size(); i += 4093) ASSERT_EQ(bytes[i], pattern_byte(i)) << i;
}

TEST(OfiRobustness, KilledServerIsReportedLostAndLaterOperationsFail) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
  std::string address;
  auto child = start_server("ofi+tcp://127.0.0.1:0", &address);
  auto t = make_transport("ofi+tcp", {.connect_timeout = std::chrono::milliseconds(1000)});
  Inbox inbox;
  t->set_handler(&inbox);
  auto server = t->lookup(address);
  ASSERT_TRUE(send_text(*t, server, "before").ok());
  ASSERT_TRUE(drive({t.get()}, [&] { return inbox.count() == 1; }));
  child->kill();
  // A request whose answer will never come: the loss must be reported instead of a hang.
  ASSERT_TRUE(send_text(*t, server, "anyone?").ok());
  ASSERT_TRUE(drive({t.get()}, [&] { return inbox.lost_count() >= 1; }));
  EXPECT_EQ(inbox.lost(0), server);
  auto local = t->allocate_memory(4096, Access::kReadWrite);
  auto remote = local->descriptor();  // any well-formed descriptor: the peer is gone anyway
  Done done;
  t->get(server, remote, 0, *local, 0, 4096, &done);
  ASSERT_TRUE(drive({t.get()}, [&] { return done.fired(); }));
  EXPECT_EQ(done.status().code, Status::Code::kDisconnected) << done.status().message;
}

TEST(OfiRobustness, ServerReportsAKilledClient) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
  auto s = make_transport("ofi+tcp://127.0.0.1:0",
                          {.connect_timeout = std::chrono::milliseconds(1000)});
  Inbox inbox;
  s->set_handler(&inbox);
  ChildProcess child("OfiChildProcess.Serve", "client " + s->address());
  ASSERT_EQ(child.read_address(), "client");
  ASSERT_TRUE(drive({s.get()}, [&] { return inbox.count() == 1; }));
  PeerRef client = inbox.message(0).first;
  EXPECT_NE(client->address().find("(client)"), std::string::npos) << client->address();
  child.kill();
  ASSERT_TRUE(drive({s.get()}, [&] { return inbox.lost_count() == 1; }));
  EXPECT_EQ(inbox.lost(0), client);
}

TEST(OfiRobustness, ServerRestartedAtTheSameAddressIsReachableAgain) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
  std::string address;
  auto first = start_server("ofi+tcp://127.0.0.1:0", &address);
  auto t = make_transport("ofi+tcp", {.connect_timeout = std::chrono::milliseconds(1000)});
  Inbox inbox;
  t->set_handler(&inbox);
  auto server = t->lookup(address);
  ASSERT_TRUE(send_text(*t, server, "first").ok());
  ASSERT_TRUE(drive({t.get()}, [&] { return inbox.count() == 1; }));
  first->kill();
  ASSERT_TRUE(send_text(*t, server, "lost in transit").ok());
  ASSERT_TRUE(drive({t.get()}, [&] { return inbox.lost_count() == 1; }));

  std::string again;
  auto second = start_server(address, &again);
  ASSERT_EQ(again, address) << "the restarted server binds the same port";
  ASSERT_TRUE(send_text(*t, server, "second").ok());
  ASSERT_TRUE(drive({t.get()}, [&] { return inbox.count() >= 2; }, std::chrono::seconds(15)));
  EXPECT_EQ(inbox.message(1).second, "second") << "nothing sent to the old process reappears";
  auto local = t->allocate_memory(kRegionSize, Access::kReadWrite);
  Status s = get_region(*t, server, inbox, *local);
  EXPECT_TRUE(s.ok()) << s.message;
}

std::string header(uint8_t type, uint8_t name_length, uint64_t length, uint64_t offset,
                   uint32_t magic = 0x49464f44) {
  // Mirror of the packet header (src/net/ofi/wire.hpp): magic, version, type, flags, name
  // length, incarnation, destination, message length, offset.
  std::string h(40, '\0');
  std::memcpy(h.data(), &magic, 4);
  h[4] = 1;
  h[5] = static_cast<char>(type);
  h[7] = static_cast<char>(name_length);
  uint64_t fields[] = {0x1234, 0, length, offset};
  std::memcpy(h.data() + 8, fields, sizeof fields);
  return h;
}

TEST(OfiRobustness, MalformedPacketsAreDroppedAndOthersServed) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
  auto s = make_transport("ofi+tcp://127.0.0.1:0", {.max_message_size = 1 << 20});
  Echo echo(*s);
  s->set_handler(&echo);
  ProgressThread progress(*s);
  const auto port = static_cast<uint16_t>(std::stoi(s->address().substr(s->address().rfind(':') + 1)));

  RawFabricSender raw;
  const std::string& name = raw.name();
  const auto n = static_cast<uint8_t>(name.size());
  std::mt19937 rng(7);
  std::string noise(3000, '\0');
  for (auto& c : noise) c = static_cast<char>(rng());
  const std::string packets[] = {
      "",
      "x",
      noise,
      header(1, n, 5, 0, 0xdeadbeef) + name + "hello",               // wrong magic
      header(1, 200, 5, 0) + name,                                   // name longer than packet
      header(1, 3, 5, 0) + "abc" + "hello",                          // not an address
      header(9, n, 0, 0) + name,                                     // unknown type
      header(1, n, uint64_t{1} << 40, 0) + name + "xx",              // over max_message_size
      header(1, n, 10, 4) + name + "abcdef",                         // middle without a start
      header(1, n, 10, 0) + name + "abcdefghijklmnop",               // longer than announced
      header(1, n, 10, 0) + name + "abc",                            // start...
      header(1, n, 10, 7) + name + "xyz",                            // ...then a gap
      header(1, n, 4, 0) + name + std::string(200000, 'z'),          // larger than a packet
  };
  for (const auto& packet : packets) raw.send(port, packet);

  // The server survived and serves a well-behaved client; the garbage produced no message.
  auto c = make_transport("ofi+tcp");
  Inbox inbox;
  c->set_handler(&inbox);
  ASSERT_TRUE(send_text(*c, c->lookup(s->address()), "still serving").ok());
  ASSERT_TRUE(drive({c.get()}, [&] { return inbox.count() == 1; }));
  EXPECT_EQ(inbox.message(0).second, "still serving");
  EXPECT_EQ(echo.echoed.load(), 1u);
}

}  // namespace
}  // namespace dango::net
