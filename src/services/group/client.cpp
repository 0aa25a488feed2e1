// group::Client and group::View (see dango/services/group/client.hpp).

#include "dango/services/group/client.hpp"

#include <algorithm>
#include <mutex>

#include "dango/rpc/remote_procedure.hpp"
#include "dango/thread/thread.hpp"
#include "protocol.hpp"

namespace dango::group {

template <class Call>
Membership View::ask_members(const Call& call) {
  std::string errors;
  // The members of the last view, then the original contacts (the view may be empty or stale).
  std::vector<Member> order = known_.members;
  for (const Member& contact : contacts_) {
    if (!known_.contains(contact.address)) order.push_back(contact);
  }
  for (const Member& member : order) {
    try {
      Membership fresh = call(engine_->lookup(member.address), member.provider_id);
      return fresh;
    } catch (const ShutdownError&) {
      throw;
    } catch (const Error& e) {
      errors += "\n  " + member.address + ": " + e.what();
    }
  }
  throw Error("group \"" + known_.name + "\": no member answered" + errors);
}

const Membership& View::refresh(std::chrono::milliseconds timeout) {
  auto rpc = engine_->rpc<Membership()>(detail::kViewRpc);
  known_ = ask_members([&](const rpc::Endpoint& ep, rpc::ProviderId id) {
    return rpc.on(ep).with(id).timeout(timeout)();
  });
  return known_;
}

bool View::wait_for_change(std::chrono::milliseconds timeout) {
  auto rpc = engine_->rpc<Membership(uint64_t, uint32_t)>(detail::kWatchRpc);
  const uint64_t before = known_.version;
  const auto wait = std::min<std::chrono::milliseconds>(timeout, std::chrono::seconds(60));
  known_ = ask_members([&](const rpc::Endpoint& ep, rpc::ProviderId id) {
    return rpc.on(ep).with(id).timeout(wait + std::chrono::seconds(5))(
        before, static_cast<uint32_t>(wait.count()));
  });
  return known_.version != before;
}

namespace detail {
// Shared by a Subscription and its ULT, which may outlive the Subscription by one long poll.
struct SubscriptionState {
  thread::Mutex mutex;  // held while the callback runs, and by cancel()
  bool cancelled = false;
};
}  // namespace detail

Subscription& Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    cancel();
    state_ = std::move(other.state_);
  }
  return *this;
}

Subscription::~Subscription() { cancel(); }

void Subscription::cancel() {
  if (!state_) return;
  std::lock_guard lock(state_->mutex);
  state_->cancelled = true;
  state_.reset();
}

Subscription View::subscribe(std::function<void(const Membership&)> callback,
                             std::chrono::milliseconds poll) const {
  Subscription subscription;
  subscription.state_ = std::make_shared<detail::SubscriptionState>();
  engine_->rpc_pool()
      .spawn([view = *this, callback = std::move(callback), poll,
              state = subscription.state_]() mutable {
        for (;;) {
          bool changed = false;
          try {
            changed = view.wait_for_change(poll);
          } catch (const ShutdownError&) {
            return;
          } catch (const Error&) {
            thread::this_ult::sleep_for(poll);  // no member answered; try again later
          }
          std::lock_guard lock(state->mutex);
          if (state->cancelled) return;
          if (changed) callback(view.membership());
        }
      })
      .detach();
  return subscription;
}

View Client::open(std::string_view address, rpc::ProviderId provider_id,
                  std::chrono::milliseconds timeout) {
  View view;
  view.engine_ = engine_;
  view.contacts_.push_back(Member{.address = std::string(address), .provider_id = provider_id});
  view.refresh(timeout);
  return view;
}

View Client::open_file(const std::filesystem::path& group_file, std::chrono::milliseconds timeout) {
  View view;
  view.engine_ = engine_;
  view.known_ = Membership::load_file(group_file);
  view.contacts_ = view.known_.members;
  view.refresh(timeout);
  return view;
}

}  // namespace dango::group
