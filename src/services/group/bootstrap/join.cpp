// Bootstrap "join": contact one existing member (options.join), retrying until join_timeout
// while it starts.

#include "../bootstrap.hpp"
#include "dango/common/config.hpp"

namespace dango::group::detail {
namespace {

void validate_join(const GroupOptions& options, std::string_view path) {
  if (options.join.empty())
    config::fail(config::join(path, "join"), "required by the \"join\" bootstrap");
}

void run_join(BootstrapContext& context) {
  const GroupOptions& options = context.options();
  const Member contact{.address = options.join, .provider_id = options.provider_id};
  if (!context.join_through({contact}, options.join_timeout)) {
    throw Error("group \"" + options.name + "\": could not join through " + options.join +
                " within " + std::to_string(options.join_timeout.count()) + " ms");
  }
}

}  // namespace
DANGO_REGISTER_GROUP_BOOTSTRAP(join, validate_join, run_join);
}  // namespace dango::group::detail
