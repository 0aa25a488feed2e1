#pragma once
// One spdlog logger per component ("net", "thread", "rpc", "kv", ...), created on first use,
// writing to stderr. The level comes from DANGO_LOG_LEVEL (trace, debug, info, warn, error,
// off; default warn) so that a library never prints unless something is wrong.

#include <memory>
#include <string_view>

namespace spdlog {
class logger;
}

namespace dango::log {

// The logger of a component; thread-safe, cheap after the first call for a name.
std::shared_ptr<spdlog::logger> get(std::string_view component);

}  // namespace dango::log
