#pragma once
// Bootstrap methods: how a member agent finds its group. Each method is one file in bootstrap/
// with one registration line:
//
//   DANGO_REGISTER_GROUP_BOOTSTRAP(self, validate_self, run_self);
//
// The registry is filled at static-initialisation time; GroupOptions::validate and the error
// for an unknown method list what it holds.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "dango/services/group/membership.hpp"
#include "dango/services/group/options.hpp"

namespace dango::group::detail {

// What a bootstrap method may do with the agent that runs it (implemented by the provider).
class BootstrapContext {
 public:
  virtual ~BootstrapContext() = default;
  virtual const GroupOptions& options() const = 0;
  // This member's address and provider id.
  virtual Member self() const = 0;
  // Starts the group as `members` (this member included or not), all alive, no events.
  virtual void create(const std::vector<Member>& members) = 0;
  // Asks the contacts in turn (random order, each bounded by one protocol period) to admit this
  // member, until one does or `budget` has passed; true once admitted (the view is installed).
  virtual bool join_through(const std::vector<Member>& contacts,
                            std::chrono::milliseconds budget) = 0;
  // The current view.
  virtual Membership view() const = 0;
};

struct BootstrapMethod {
  std::string name;
  // Checks the options the method needs; throws ConfigError naming the key under `path`.
  std::function<void(const GroupOptions&, std::string_view path)> validate;
  // Makes the agent a member; throws dango::Error naming what failed.
  std::function<void(BootstrapContext&)> run;
};

// Registers a method; returns true (to initialise a static). Aborts on a duplicate name.
bool register_bootstrap(BootstrapMethod method);
// The method called `name`, or nullptr.
const BootstrapMethod* find_bootstrap(std::string_view name);
// Every registered method's name, sorted.
std::vector<std::string> bootstrap_names();

// Runs `work` on a new OS thread and waits for it, rethrowing what it throws. For methods that
// call a launcher's library (MPI, PMIx): those block the thread and need a full-size stack,
// not a ULT's.
void run_on_os_thread(const std::function<void()>& work);
// Members at `addresses` (a launcher's ranks, in rank order) with provider id `provider_id`;
// throws Error naming `method` and the rank when two ranks share an address.
std::vector<Member> launcher_members(std::string_view method,
                                     const std::vector<std::string>& addresses,
                                     rpc::ProviderId provider_id);

}  // namespace dango::group::detail

#define DANGO_REGISTER_GROUP_BOOTSTRAP(name, validate, run)                      \
  [[maybe_unused]] static const bool dango_group_bootstrap_##name##_registered = \
      ::dango::group::detail::register_bootstrap({#name, validate, run})
