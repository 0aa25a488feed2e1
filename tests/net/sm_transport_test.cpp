// What only the sm transport does with messages: named and unnamed addresses and the names'
// files, the exact wake-up protocol of its wait descriptor, ring sizes and the busy-poll window
// from the environment. What every transport does is in the transport_*_test.cpp suites.

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

TEST(SmTransport, PrepareWaitArmsTheWaitFdOrSaysAMessageIsWaiting) {
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

TEST(SmTransport, WriterWaitingForRingRoomSleepsAndIsWokenWhenTheReaderFreesSome) {
  ScopedEnv ring("DANGO_SM_RING_SIZE", "65536");
  auto s = server();
  auto c = make_transport("sm");
  Inbox inbox;
  s->set_handler(&inbox);
  auto peer = c->lookup(s->address());
  ASSERT_TRUE(send_text(*c, peer, "connect").ok());
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return inbox.count() == 1; }));
  // Sixteen rings' worth: most of it waits in the writer's queue for room.
  const std::string big = pattern(1 << 20, 5);
  ASSERT_TRUE(send_text(*c, peer, big).ok());
  c->progress(0us);
  // The writer may sleep: the reader will wake it when it frees room (no timed nap).
  ASSERT_GE(c->wait_fd(), 0);
  pollfd pfd{c->wait_fd(), POLLIN, 0};
  // A sleep on the wait descriptor reads what the connection's set-up left on the socket.
  ASSERT_TRUE(c->prepare_wait());
  if (::poll(&pfd, 1, 0) == 1) {
    c->progress(0us);
    ASSERT_TRUE(c->prepare_wait());
  }
  EXPECT_EQ(::poll(&pfd, 1, 0), 0) << "the reader has freed nothing yet";
  s->progress(0us);  // reads the full ring: room frees up
  EXPECT_EQ(::poll(&pfd, 1, 10000), 1) << "the writer was not woken";
  c->progress(0us);
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return inbox.count() == 2; }));
  EXPECT_TRUE(inbox.message(1).second == big);
}

TEST(SmTransport, SendToNobodyFailsAtOnceNamingTheAddress) {
  auto probe = server();
  std::string address = probe->address();
  probe.reset();
  auto c = make_transport("sm");
  auto status = send_text(*c, c->lookup(address), "anyone?");
  EXPECT_EQ(status.code, Status::Code::kDisconnected);
  EXPECT_NE(status.message.find(address), std::string::npos) << status.message;
}

TEST(SmTransport, CloseRemovesItsFiles) {
  TempDir dir;
  ScopedEnv env("DANGO_SM_DIR", dir.path().string());
  auto s = server("sm://closing");
  EXPECT_TRUE(std::filesystem::exists(dir.file("closing.sock")));
  EXPECT_TRUE(std::filesystem::exists(dir.file("closing.lock")));
  s->close();
  EXPECT_FALSE(std::filesystem::exists(dir.file("closing.sock")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("closing.lock")));
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

}  // namespace
}  // namespace dango::net
