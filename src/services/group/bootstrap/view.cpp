// Bootstrap "view": a static group listed in the configuration. Every listed member starts
// with the same view (all alive, incarnation 0) without contacting anyone; a listed member that
// never starts is suspected, then declared dead, like a crashed one.

#include <algorithm>

#include "../bootstrap.hpp"
#include "dango/common/config.hpp"

namespace dango::group::detail {
namespace {

void validate_view(const GroupOptions& options, std::string_view path) {
  if (options.view.empty())
    config::fail(config::join(path, "view"), "required by the \"view\" bootstrap");
  for (size_t i = 0; i < options.view.size(); ++i) {
    if (std::count(options.view.begin(), options.view.end(), options.view[i]) > 1) {
      config::fail(config::join(config::join(path, "view"), i),
                   "duplicate address \"" + options.view[i] + "\"");
    }
  }
}

void run_view(BootstrapContext& context) {
  const Member self = context.self();
  const auto& listed = context.options().view;
  if (std::find(listed.begin(), listed.end(), self.address) == listed.end()) {
    throw ConfigError("group.view: this member's address \"" + self.address +
                      "\" is not in the static view");
  }
  std::vector<Member> members;
  for (const std::string& address : listed) {
    members.push_back(Member{.address = address, .provider_id = context.options().provider_id});
  }
  context.create(members);
}

}  // namespace
DANGO_REGISTER_GROUP_BOOTSTRAP(view, validate_view, run_view);
}  // namespace dango::group::detail
