// Member agents in one process (several engines served by the test's thread): the self, join
// and view bootstraps, observers, voluntary leave, and the client's view fetch and long poll.
// Failure detection across real processes is in group_process_test.cpp.

#include "dango/services/group/provider.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "dango/services/group/client.hpp"
#include "rpc/rpc_test_util.hpp"

namespace dango::group {
namespace {

using namespace std::chrono_literals;
using rpc::testing::eventually;

SwimOptions fast_swim() {
  return SwimOptions{.period = 100ms, .ping_timeout = 50ms, .suspicion_timeout = 1000ms};
}

// Polls `condition` while letting the engines' ULTs run on this thread.
template <class Pred>
bool settles(Pred condition, std::chrono::milliseconds limit = 10000ms) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    thread::this_ult::sleep_for(5ms);
  }
  return true;
}

TEST(GroupProvider, SelfBootstrapMakesAGroupOfOne) {
  rpc::Engine engine{"tcp://127.0.0.1:0"};
  Provider member{engine, {.name = "solo", .bootstrap = "self", .swim = fast_swim()}};
  const Membership view = member.view();
  ASSERT_EQ(view.size(), 1u);
  EXPECT_EQ(view.name, "solo");
  EXPECT_EQ(view.members[0].address, engine.address());
  EXPECT_EQ(view.members[0].rank, 0u);
  EXPECT_EQ(member.config()["bootstrap"], "self");
}

TEST(GroupProvider, JoinBootstrapAddsTheMemberEverywhereAndObserversSeeIt) {
  rpc::Engine a_engine{"tcp://127.0.0.1:0"};
  rpc::Engine b_engine{"tcp://127.0.0.1:0"};
  std::vector<Event> seen_by_a;
  Provider a{a_engine,
             {.name = "g", .bootstrap = "self", .swim = fast_swim()},
             [&](const Event& e) { seen_by_a.push_back(e); }};
  Provider b{b_engine,
             {.name = "g", .bootstrap = "join", .join = a_engine.address(), .swim = fast_swim()}};
  EXPECT_EQ(b.view().size(), 2u);
  ASSERT_TRUE(settles([&] { return a.view().size() == 2; }));
  EXPECT_EQ(a.view().version, b.view().version);
  ASSERT_EQ(seen_by_a.size(), 1u);
  EXPECT_EQ(seen_by_a[0].kind, EventKind::kJoin);
  EXPECT_EQ(seen_by_a[0].member.address, b_engine.address());

  b.leave();
  ASSERT_TRUE(settles([&] { return a.view().size() == 1; }));
  ASSERT_EQ(seen_by_a.size(), 2u);
  EXPECT_EQ(seen_by_a[1].kind, EventKind::kLeave);
}

TEST(GroupProvider, JoiningAGroupOfAnotherNameIsRefused) {
  rpc::Engine a_engine{"tcp://127.0.0.1:0"};
  rpc::Engine b_engine{"tcp://127.0.0.1:0"};
  Provider a{a_engine, {.name = "one", .bootstrap = "self", .swim = fast_swim()}};
  EXPECT_THROW((Provider{b_engine,
                         {.name = "two",
                          .bootstrap = "join",
                          .join = a_engine.address(),
                          .join_timeout = 300ms,
                          .swim = fast_swim()}}),
               ConfigError);
}

TEST(GroupProvider, StaticViewStartsEveryListedMemberInOneView) {
  rpc::Engine a_engine{"tcp://127.0.0.1:0"};
  rpc::Engine b_engine{"tcp://127.0.0.1:0"};
  const std::vector<std::string> listed{a_engine.address(), b_engine.address()};
  Provider a{a_engine, {.name = "g", .bootstrap = "view", .view = listed, .swim = fast_swim()}};
  Provider b{b_engine, {.name = "g", .bootstrap = "view", .view = listed, .swim = fast_swim()}};
  EXPECT_EQ(a.view().members, b.view().members);
  EXPECT_EQ(a.view().version, b.view().version);
  rpc::Engine c_engine{"tcp://127.0.0.1:0"};
  EXPECT_THROW(
      (Provider{c_engine, {.name = "g", .bootstrap = "view", .view = listed, .swim = fast_swim()}}),
      ConfigError);
}

TEST(GroupClient, FetchesTheViewAndIsToldOfChangesByLongPoll) {
  rpc::Engine a_engine{"tcp://127.0.0.1:0"};
  Provider a{a_engine, {.name = "g", .bootstrap = "self", .swim = fast_swim()}};
  rpc::Engine client_engine{"tcp"};
  View view = Client{client_engine}.open(a_engine.address());
  EXPECT_EQ(view.membership().size(), 1u);
  EXPECT_EQ(view.version(), a.version());
  EXPECT_FALSE(view.wait_for_change(50ms));  // nothing changed

  rpc::Engine b_engine{"tcp://127.0.0.1:0"};
  std::unique_ptr<Provider> b;
  thread::Ult joiner = client_engine.rpc_pool().spawn([&] {
    thread::this_ult::sleep_for(100ms);
    b = std::make_unique<Provider>(
        b_engine,
        GroupOptions{
            .name = "g", .bootstrap = "join", .join = a_engine.address(), .swim = fast_swim()});
  });
  EXPECT_TRUE(view.wait_for_change(10s));
  EXPECT_EQ(view.membership().size(), 2u);
  joiner.join();
  EXPECT_TRUE(view.membership().contains(b_engine.address()));
}

TEST(GroupClient, SubscriberIsCalledWithEachNewViewUntilCancelled) {
  rpc::Engine a_engine{"tcp://127.0.0.1:0"};
  Provider a{a_engine, {.name = "g", .bootstrap = "self", .swim = fast_swim()}};
  rpc::Engine client_engine{"tcp"};
  const View view = Client{client_engine}.open(a_engine.address());
  std::vector<size_t> sizes;
  Subscription subscription =
      view.subscribe([&](const Membership& m) { sizes.push_back(m.size()); }, 200ms);

  rpc::Engine b_engine{"tcp://127.0.0.1:0"};
  auto b = std::make_unique<Provider>(
      b_engine,
      GroupOptions{
          .name = "g", .bootstrap = "join", .join = a_engine.address(), .swim = fast_swim()});
  ASSERT_TRUE(settles([&] { return !sizes.empty() && sizes.back() == 2; }));
  b.reset();  // leaves
  ASSERT_TRUE(settles([&] { return sizes.back() == 1; }));
  subscription.cancel();
  const size_t calls = sizes.size();
  rpc::Engine c_engine{"tcp://127.0.0.1:0"};
  Provider c{c_engine,
             {.name = "g", .bootstrap = "join", .join = a_engine.address(), .swim = fast_swim()}};
  thread::this_ult::sleep_for(400ms);
  EXPECT_EQ(sizes.size(), calls) << "called after cancel()";
}

TEST(GroupClient, OpensAGroupFileAndFailsOverToAnotherMember) {
  rpc::testing::TempDir dir;
  const std::string file = (dir.path() / "g.group").string();
  rpc::Engine a_engine{"tcp://127.0.0.1:0"};
  rpc::Engine b_engine{"tcp://127.0.0.1:0"};
  auto a = std::make_unique<Provider>(
      a_engine, GroupOptions{.name = "g", .bootstrap = "file", .file = file, .swim = fast_swim()});
  Provider b{b_engine, {.name = "g", .bootstrap = "file", .file = file, .swim = fast_swim()}};
  EXPECT_EQ(Membership::load_file(file).size(), 2u);
  rpc::Engine client_engine{"tcp"};
  View view = Client{client_engine}.open_file(file);
  EXPECT_EQ(view.membership().size(), 2u);
  a.reset();  // leaves; its engine no longer serves the group
  ASSERT_TRUE(settles([&] { return b.view().size() == 1; }));
  EXPECT_EQ(view.refresh().size(), 1u);
  EXPECT_EQ(view.membership().members[0].address, b_engine.address());
  EXPECT_THROW(Client{client_engine}.open_file(dir.path() / "none.group"), ConfigError);
}

}  // namespace
}  // namespace dango::group
