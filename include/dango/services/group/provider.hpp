#pragma once
// The group member agent: one per process and group. It joins the group as its bootstrap method
// says, runs SWIM failure detection in a ULT of its pool, serves the view to clients, keeps the
// group file current (the member of rank 0 rewrites it) and calls observers on membership
// changes.
//
//   dango::Engine engine{"tcp://0.0.0.0:7000"};
//   dango::group::Provider member{engine, {.name = "store", .bootstrap = "file",
//                                          .file = "/shared/store.group"}};
//   member.add_observer([](const dango::group::Event& e) { ... });
//   ...
//   member.leave();  // voluntary: peers remove it at once instead of suspecting it

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>

#include "dango/rpc/provider.hpp"
#include "dango/services/group/membership.hpp"
#include "dango/services/group/options.hpp"
#include "dango/services/group/swim.hpp"

namespace dango::group {

using Event = swim::Event;
using EventKind = swim::EventKind;
// Called on the agent's ULT after the change (never under its lock), once per event; it may
// call view() but should not block for long (the protocol waits for it).
using Observer = std::function<void(const Event&)>;

class Provider : public rpc::Provider {
 public:
  // Validates `options` (ConfigError naming the key), registers the group RPCs for
  // options.provider_id and runs the bootstrap: returns once this member is in the group.
  // `observer`, when set, is registered before the bootstrap, so it sees every change after it.
  // Throws dango::Error when the bootstrap fails (no contact reachable, group file locked).
  Provider(rpc::Engine& engine, GroupOptions options, Observer observer = {},
           thread::Pool pool = {});
  // Leaves the group (as leave()) if still a member, then stops the protocol.
  ~Provider() override;

  // The current view (a copy; no RPC).
  Membership view() const;
  uint64_t version() const;
  // This member's current record (its incarnation grows when it refutes a suspicion).
  Member self() const;
  // Adds an observer of joins, leaves and deaths; returns an id for remove_observer().
  uint64_t add_observer(Observer observer);
  void remove_observer(uint64_t id);
  // Leaves voluntarily: tells every live member at once (RPCs in parallel, each bounded by the
  // ping timeout), so they remove it without suspecting it; then stops probing. Idempotent.
  void leave();
  const GroupOptions& options() const;
  // The effective configuration (defaults filled in) and this member's address.
  nlohmann::json config() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace dango::group
