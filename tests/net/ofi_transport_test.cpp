// What only the ofi transport does with messages (libfabric tcp;ofi_rxm here): the address forms
// it accepts, the error for a provider this machine lacks, and a receiver dropping a message over
// its limit (a fabric has no connection to close). What every transport does is in the
// transport_*_test.cpp suites.

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "common/scoped_env.hpp"
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

TEST(OfiTransport, CompletionQueueWaitIsChosenByEnvironmentAndABadChoiceIsRefused) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
  for (const char* choice : {"fd", "none"}) {
    dango::testing::ScopedEnv env("DANGO_OFI_CQ_WAIT", choice);
    auto s = server();
    auto c = make_transport("ofi+tcp");
    Inbox inbox;
    s->set_handler(&inbox);
    ProgressThread progress(*s);  // the server sleeps between messages, each way
    auto peer = c->lookup(s->address());
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(send_text(*c, peer, "message " + std::to_string(i)).ok()) << choice;
      ASSERT_TRUE(drive({c.get()}, [&] { return inbox.count() == static_cast<size_t>(i + 1); }))
          << choice << ": message " << i << " never arrived";
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let the server fall asleep
    }
    EXPECT_EQ(inbox.message(2).second, "message 2") << choice;
  }
  dango::testing::ScopedEnv env("DANGO_OFI_CQ_WAIT", "sometimes");
  try {
    make_transport("ofi+tcp");
    ADD_FAILURE() << "DANGO_OFI_CQ_WAIT=sometimes was accepted";
  } catch (const NetworkError& e) {
    EXPECT_NE(std::string(e.what()).find("DANGO_OFI_CQ_WAIT=sometimes"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace dango::net
