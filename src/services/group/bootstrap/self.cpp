// Bootstrap "self": a group of one, which others may join later (through "join" or the file).

#include "../bootstrap.hpp"

namespace dango::group::detail {
namespace {

void run_self(BootstrapContext& context) { context.create({context.self()}); }

}  // namespace
DANGO_REGISTER_GROUP_BOOTSTRAP(self, nullptr, run_self);
}  // namespace dango::group::detail
