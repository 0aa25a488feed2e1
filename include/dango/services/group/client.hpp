#pragma once
// The client side of a group: fetch the view from any member, and follow its changes.
//
//   dango::group::Client client{engine};
//   dango::group::View view = client.open_file("/shared/store.group");
//   for (const auto& m : view.membership().members) ...;
//   if (view.wait_for_change(10s)) { ... view.membership() is newer ... }

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string_view>

#include "dango/rpc/engine.hpp"
#include "dango/services/group/membership.hpp"

namespace dango::group {

namespace detail {
struct SubscriptionState;
}

// Keeps a View::subscribe callback running; destroying it stops the callbacks (waiting for one
// in progress to return). Movable.
class Subscription {
 public:
  Subscription() = default;
  Subscription(Subscription&&) noexcept = default;
  Subscription& operator=(Subscription&& other) noexcept;
  ~Subscription();
  // Stops the callbacks now (as destruction does). Idempotent.
  void cancel();

 private:
  friend class View;
  std::shared_ptr<detail::SubscriptionState> state_;
};

// A handle on a group as a client sees it: the last view fetched, and the members to ask for a
// newer one (when the one asked does not answer, the next member of the last view is tried).
// Copyable; use one handle from one ULT at a time.
class View {
 public:
  View() = default;
  // The last view fetched (no RPC).
  const Membership& membership() const { return known_; }
  uint64_t version() const { return known_.version; }
  // Fetches the current view (one RPC to a member; more when members do not answer within
  // `timeout` each). Throws dango::Error naming the group when no member answers.
  const Membership& refresh(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Waits until the group's version differs from version() (a long poll held by one member,
  // at most `timeout`, capped at 60 s); returns true and updates membership() when it changed.
  // Throws dango::Error when no member answers.
  bool wait_for_change(std::chrono::milliseconds timeout);
  // Calls `callback` with every new view, from a ULT of the engine's rpc pool, until the
  // Subscription is destroyed. Each long poll lasts at most `poll`; when no member answers, it
  // retries every `poll`. Costs one outstanding RPC to one member while it lives.
  Subscription subscribe(std::function<void(const Membership&)> callback,
                         std::chrono::milliseconds poll = std::chrono::seconds(10)) const;

 private:
  friend class Client;
  template <class Call>
  Membership ask_members(const Call& call);
  rpc::Engine* engine_ = nullptr;
  Membership known_;
  std::vector<Member> contacts_;  // who to ask first: the opening address, then members
};

// Makes View handles from an engine (a client-only engine is enough).
class Client {
 public:
  explicit Client(rpc::Engine& engine) : engine_(&engine) {}
  // The view served by the agent at `address` (provider `provider_id`); one RPC. Throws
  // dango::Error when it does not answer within `timeout`.
  View open(std::string_view address, rpc::ProviderId provider_id = 0,
            std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Reads the group file, then fetches the current view from one of the members it lists.
  // Throws ConfigError (unreadable file) or dango::Error (no listed member answers).
  View open_file(const std::filesystem::path& group_file,
                 std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  rpc::Engine* engine_;
};

}  // namespace dango::group
