// The sm transport facing hostile input and real processes: garbage on the control socket or in
// a ring closes only the offending connection; forked processes move bulk data on each of sm's
// paths (cross-memory attach allowed or not, ordinary memory and arenas); names left by a killed
// process are cleaned at the next start. What every transport does across processes is in
// transport_processes_test.cpp.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <random>

#include "bulk_test_util.hpp"
#include "sm_test_util.hpp"

namespace dango::net {
namespace {

using namespace testing;

// Mirrors of the wire layout (src/net/sm/control.hpp, ring.hpp, sm_internal.hpp), written out
// so that the test checks the protocol rather than reusing the code under test.
constexpr uint32_t kControlMagic = 0x434d5344;
constexpr uint8_t kHello = 1;
constexpr size_t kRingDataOffset = 4096;
constexpr size_t kRing = size_t{64} << 10;

std::string control_packet(uint8_t type, const std::string& body) {
  std::string p(16, '\0');
  std::memcpy(p.data(), &kControlMagic, 4);
  p[4] = 1;
  p[5] = static_cast<char>(type);
  auto length = static_cast<uint32_t>(body.size());
  std::memcpy(p.data() + 8, &length, 4);
  return p + body;
}

std::string hello_body(uint64_t ring_key) {
  uint64_t fields[5] = {0x1234, 0, 0, kRing, ring_key};
  std::string body(48, '\0');
  std::memcpy(body.data(), fields, sizeof fields);
  return body;
}

// A Unix SOCK_SEQPACKET client of an sm listener, speaking raw packets.
class RawSmSocket {
 public:
  explicit RawSmSocket(const std::string& path) : fd_(::socket(AF_UNIX, SOCK_SEQPACKET, 0)) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawSmSocket() { ::close(fd_); }
  bool connected() const { return connected_; }
  void send(const std::string& packet, int pass_fd = -1) {
    iovec iov{const_cast<char*>(packet.data()), packet.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (pass_fd >= 0) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(cmsg), &pass_fd, sizeof(int));
    }
    ASSERT_GE(::sendmsg(fd_, &msg, MSG_NOSIGNAL), 0);
  }
  // True once the other side closed the connection (reads and drops what it sent before).
  bool closed_by_peer() {
    char buffer[2048];
    for (;;) {
      ssize_t n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
      if (n == 0) return true;
      if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
    }
  }

 private:
  int fd_;
  bool connected_ = false;
};

int memfd_of_size(size_t size) {
  int fd = ::memfd_create("sm-test", MFD_CLOEXEC);
  if (fd >= 0 && ::ftruncate(fd, static_cast<off_t>(size)) != 0) return -1;
  return fd;
}

TEST(SmRobustness, GarbageClosesOnlyTheOffendingConnection) {
  TempDir dir;
  ScopedEnv env("DANGO_SM_DIR", dir.path().string());
  auto s = make_transport("sm://victim");
  Echo echo(*s);
  s->set_handler(&echo);
  auto pump = [&] {
    for (int i = 0; i < 200; ++i) s->progress(std::chrono::microseconds(100));
  };
  const std::string path = dir.file("victim.sock");

  std::mt19937 rng(42);
  std::string noise(1000, '\0');
  for (auto& ch : noise) ch = static_cast<char>(rng());
  RawSmSocket random_bytes(path);
  ASSERT_TRUE(random_bytes.connected());
  random_bytes.send(noise);

  RawSmSocket hello_without_segment(path);
  hello_without_segment.send(control_packet(kHello, hello_body(7)));

  RawSmSocket hello_with_wrong_segment(path);
  int small = memfd_of_size(4096);
  hello_with_wrong_segment.send(control_packet(kHello, hello_body(7)), small);
  ::close(small);

  // A well-formed HELLO, then a committed record of an unknown type in the ring.
  RawSmSocket corrupt_ring(path);
  const uint64_t key = 0x5eed;
  int segment = memfd_of_size(kRingDataOffset + 2 * kRing);
  auto* base = static_cast<std::byte*>(
      ::mmap(nullptr, kRingDataOffset + 2 * kRing, PROT_READ | PROT_WRITE, MAP_SHARED, segment, 0));
  ASSERT_NE(base, MAP_FAILED);
  corrupt_ring.send(control_packet(kHello, hello_body(key)), segment);
  ::close(segment);
  pump();
  uint32_t length = 8;
  std::memcpy(base + kRingDataOffset + 8, &length, 4);
  base[kRingDataOffset + 12] = std::byte{0xee};
  uint64_t commit = 0 ^ key;  // position 0 xor the key
  std::memcpy(base + kRingDataOffset, &commit, 8);

  // A well-behaved client keeps being served throughout.
  auto c = make_transport("sm");
  Inbox inbox;
  c->set_handler(&inbox);
  auto peer = c->lookup(s->address());
  ASSERT_TRUE(send_text(*c, peer, "still served").ok());
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return inbox.count() == 1; }));
  pump();
  EXPECT_TRUE(random_bytes.closed_by_peer());
  EXPECT_TRUE(hello_without_segment.closed_by_peer());
  EXPECT_TRUE(hello_with_wrong_segment.closed_by_peer());
  EXPECT_TRUE(corrupt_ring.closed_by_peer());
  ::munmap(base, kRingDataOffset + 2 * kRing);
  ASSERT_TRUE(send_text(*c, peer, "and after").ok());
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return inbox.count() == 2; }));
  EXPECT_EQ(inbox.lost_count(), 0u);
}

// The producer side of a ring, written out from the protocol (ring.hpp): 16-byte aligned
// records whose commit word is position ^ key, a padding record before a wrap.
struct FakeProducer {
  std::byte* control;  // tail at +0, head at +64
  std::byte* data;
  uint64_t key;
  uint64_t tail = 0;

  uint64_t head() const {
    return std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(control + 64)).load();
  }
  void record(uint64_t position, uint8_t type, const std::string& payload) {
    std::byte* h = data + (position % kRing);
    auto length = static_cast<uint32_t>(payload.size());
    std::memcpy(h + 8, &length, 4);
    h[12] = static_cast<std::byte>(type);
    std::memcpy(h + 16, payload.data(), payload.size());
    std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(h)).store(position ^ key);
  }
  // Writes a message record once there is room; false if the reader never makes it.
  bool send(const std::string& payload, Transport& reader) {
    const size_t size = (16 + payload.size() + 15) & ~size_t{15};
    const size_t offset = tail % kRing;
    const size_t pad = offset + size > kRing ? kRing - offset : 0;
    for (int i = 0; i < 100000 && tail + pad + size - head() > kRing; ++i) {
      reader.progress(std::chrono::microseconds(0));
    }
    if (tail + pad + size - head() > kRing) return false;
    if (pad > 0) record(tail, 1, std::string(pad - 16, '\0'));
    record(tail + pad, 2, payload);
    tail += pad + size;
    return true;
  }
};

TEST(SmRobustness, ACorruptRingHeaderClosesOnlyThatConnection) {
  TempDir dir;
  ScopedEnv env("DANGO_SM_DIR", dir.path().string());
  auto s = make_transport("sm://victim");
  Echo echo(*s);
  s->set_handler(&echo);
  RawSmSocket fake(dir.file("victim.sock"));
  const uint64_t key = 0xfeed;
  const size_t segment_size = kRingDataOffset + 2 * kRing;
  int segment = memfd_of_size(segment_size);
  auto* base = static_cast<std::byte*>(
      ::mmap(nullptr, segment_size, PROT_READ | PROT_WRITE, MAP_SHARED, segment, 0));
  ASSERT_NE(base, MAP_FAILED);
  fake.send(control_packet(kHello, hello_body(key)), segment);
  ::close(segment);
  // The server's replies go to ring 1, whose head (ours to write) claims an impossible position.
  uint64_t garbage_head = uint64_t{1} << 60;
  std::memcpy(base + 256 + 64, &garbage_head, 8);
  FakeProducer producer{base, base + kRingDataOffset, key};
  // More echoes than ring 1 holds: the server must look at our head, and finds it corrupt.
  for (int i = 0; i < 600 && !fake.closed_by_peer(); ++i) {
    if (!producer.send(std::string(200, 'x'), *s)) break;
    s->progress(std::chrono::microseconds(0));
  }
  for (int i = 0; i < 200; ++i) s->progress(std::chrono::microseconds(100));
  EXPECT_TRUE(fake.closed_by_peer());
  EXPECT_GT(echo.echoed.load(), 0u);
  ::munmap(base, segment_size);

  auto c = make_transport("sm");
  Inbox inbox;
  c->set_handler(&inbox);
  ASSERT_TRUE(send_text(*c, c->lookup(s->address()), "still served").ok());
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return inbox.count() == 1; }));
}

std::string to_hex(const std::vector<std::byte>& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (auto b : bytes) {
    out += digits[static_cast<unsigned>(b) >> 4];
    out += digits[static_cast<unsigned>(b) & 15];
  }
  return out;
}

std::vector<std::byte> from_hex(const std::string& text) {
  std::vector<std::byte> out(text.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<std::byte>(std::stoi(text.substr(2 * i, 2), nullptr, 16));
  }
  return out;
}

// Echoes messages until "quit", then exits 0; serves 2 MiB of ordinary memory and a 2 MiB arena,
// both filled from seed 9, and reports its address and both descriptors.
int run_server(int out, const std::string& address) {
  auto t = make_transport(address);
  Echo echo(*t);
  struct QuitOrEcho : MessageHandler {
    explicit QuitOrEcho(Echo& e) : echo(e) {}
    void on_message(const PeerRef& from, std::span<const std::byte> message) override {
      if (message.size() == 4 && std::memcmp(message.data(), "quit", 4) == 0) quit = true;
      echo.on_message(from, message);
    }
    void on_peer_lost(const PeerRef&) override {}
    Echo& echo;
    bool quit = false;
  } handler(echo);
  t->set_handler(&handler);
  std::vector<std::byte> plain(2 << 20);
  fill(plain, 9);
  std::span<std::byte> segment(plain);
  auto plain_region = t->register_memory({&segment, 1}, Access::kReadWrite);
  auto arena = t->allocate_memory(2 << 20, Access::kReadWrite);
  fill(arena->segments()[0], 9);
  write_line(out, t->address());
  write_line(out, to_hex(plain_region->descriptor()));
  write_line(out, to_hex(arena->descriptor()));
  while (!handler.quit) t->progress(std::chrono::milliseconds(10));
  for (int i = 0; i < 20; ++i) t->progress(std::chrono::milliseconds(1));
  return 0;
}

class SmTwoProcesses : public ::testing::TestWithParam<bool> {};

TEST_P(SmTwoProcesses, BulkDataMovesBetweenOrdinaryMemoryAndArenas) {
  const bool no_cma = GetParam();
  std::unique_ptr<ScopedEnv> env;
  if (no_cma) env = std::make_unique<ScopedEnv>("DANGO_SM_NO_CMA", "1");
  ForkedChild child([](int out) { return run_server(out, "sm://"); });
  std::string address = child.read_line();
  auto plain = from_hex(child.read_line());
  auto arena = from_hex(child.read_line());
  ASSERT_TRUE(address.starts_with("sm://")) << address;

  auto c = make_transport("sm");
  Inbox inbox;
  c->set_handler(&inbox);
  auto peer = c->lookup(address);
  std::vector<std::byte> expected(2 << 20), local(2 << 20);
  fill(expected, 9);
  std::span<std::byte> segment(local);
  auto local_region = c->register_memory({&segment, 1}, Access::kReadWrite);
  auto transfer = [&](bool is_get, const std::vector<std::byte>& remote) {
    Done done;
    if (is_get) {
      c->get(peer, remote, 0, *local_region, 0, local.size(), &done);
    } else {
      c->put(peer, remote, 0, *local_region, 0, local.size(), &done);
    }
    EXPECT_TRUE(drive({c.get()}, [&] { return done.fired(); }));
    return done.status();
  };
  for (const auto* remote : {&plain, &arena}) {
    for (int round = 0; round < 2; ++round) {  // the second arena round is a mapped memcpy
      std::fill(local.begin(), local.end(), std::byte{0});
      ASSERT_TRUE(transfer(true, *remote).ok());
      ASSERT_EQ(local, expected);
    }
    fill(local, 21);
    ASSERT_TRUE(transfer(false, *remote).ok());
    std::fill(local.begin(), local.end(), std::byte{0});
    ASSERT_TRUE(transfer(true, *remote).ok());
    std::vector<std::byte> written(2 << 20);
    fill(written, 21);
    ASSERT_EQ(local, written);
  }
  ASSERT_TRUE(send_text(*c, peer, "quit").ok());
  ASSERT_TRUE(drive({c.get()}, [&] { return inbox.lost_count() == 1; }));
  EXPECT_EQ(child.wait_exit(), 0);
}

INSTANTIATE_TEST_SUITE_P(CrossMemoryAttach, SmTwoProcesses, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Forbidden" : "Allowed"; });

TEST(SmRobustness, NamesLeftByAKilledProcessAreRemovedAtTheNextStart) {
  TempDir dir;
  ScopedEnv env("DANGO_SM_DIR", dir.path().string());
  ForkedChild child([](int out) {
    auto t = make_transport("sm://left-behind");
    write_line(out, t->address());
    ::kill(::getpid(), SIGKILL);  // no destructor, no close(): the files stay
    return 0;
  });
  ASSERT_EQ(child.read_line(), "sm://left-behind");
  EXPECT_EQ(child.wait_exit(), 128 + SIGKILL);
  EXPECT_TRUE(std::filesystem::exists(dir.file("left-behind.sock")));
  EXPECT_TRUE(std::filesystem::exists(dir.file("left-behind.lock")));
  auto next = make_transport("sm");  // any sm transport cleans up when it starts
  EXPECT_FALSE(std::filesystem::exists(dir.file("left-behind.sock")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("left-behind.lock")));
  // A live owner's files are left alone.
  auto live = make_transport("sm://alive");
  auto another = make_transport("sm");
  EXPECT_TRUE(std::filesystem::exists(dir.file("alive.sock")));
}

}  // namespace
}  // namespace dango::net
