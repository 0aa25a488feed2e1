// The client of a daemon's administration RPCs, with errors that say what went wrong in terms
// of the process (unreachable, silent, not a daemon) rather than of the transport.

#include "dango/compose/admin.hpp"
#include "dango/services/monitor/monitoring.hpp"

namespace dango::compose {

// A remote ConfigError travels as a RemoteError; this prefix marks it so the client can rethrow
// it as ConfigError (dango-ctl exits 2 for it, like the daemon).
constexpr std::string_view kConfigErrorMark = "config error: ";

AdminClient::AdminClient(rpc::Engine& engine, std::string address,
                         std::chrono::milliseconds timeout)
    : engine_(engine), address_(std::move(address)), timeout_(timeout) {}

template <class F>
auto AdminClient::translate(std::string_view what, F&& call) const {
  try {
    return call(engine_.lookup(address_));
  } catch (const TimeoutError&) {
    throw TimeoutError(address_ + ": no answer to " + std::string(what) + " within " +
                       std::to_string(timeout_.count()) +
                       " ms (is it a Dango process, and is it running?)");
  } catch (const NetworkError& e) {
    throw NetworkError(address_ + ": unreachable (" + e.what() + ")");
  } catch (const RemoteError& e) {
    const std::string message = e.what();
    if (message.find("no RPC with this name") != std::string::npos ||
        message.find("has no provider 0") != std::string::npos) {
      if (what == monitor::kStatsRpc) {
        throw Error(address_ + ": this process has no monitoring (no \"monitoring\" section)");
      }
      throw Error(address_ + ": a Dango process, but not a dango-daemon (it does not serve " +
                  std::string(what) + ")");
    }
    if (auto pos = message.find(kConfigErrorMark); pos != std::string::npos) {
      throw ConfigError(message.substr(pos + kConfigErrorMark.size()));
    }
    throw;
  }
}

nlohmann::json AdminClient::query() const {
  return translate(kQueryRpc, [&](const rpc::Endpoint& ep) {
    return nlohmann::json::parse(engine_.rpc<std::string()>(kQueryRpc).on(ep).timeout(timeout_)());
  });
}

nlohmann::json AdminClient::list_providers() const {
  return translate(kListProvidersRpc, [&](const rpc::Endpoint& ep) {
    return nlohmann::json::parse(
        engine_.rpc<std::string()>(kListProvidersRpc).on(ep).timeout(timeout_)());
  });
}

nlohmann::json AdminClient::add_provider(const nlohmann::json& provider) const {
  return translate(kAddProviderRpc, [&](const rpc::Endpoint& ep) {
    return nlohmann::json::parse(engine_.rpc<std::string(std::string)>(kAddProviderRpc)
                                     .on(ep)
                                     .timeout(timeout_)(provider.dump()));
  });
}

void AdminClient::remove_provider(std::string_view name) const {
  translate(kRemoveProviderRpc, [&](const rpc::Endpoint& ep) {
    engine_.rpc<void(std::string)>(kRemoveProviderRpc).on(ep).timeout(timeout_)(std::string(name));
    return 0;
  });
}

nlohmann::json AdminClient::stats() const {
  return translate(monitor::kStatsRpc, [&](const rpc::Endpoint& ep) {
    return monitor::fetch_statistics(engine_, ep, timeout_);
  });
}

void AdminClient::shutdown() const {
  translate(kShutdownRpc, [&](const rpc::Endpoint& ep) {
    engine_.rpc<void()>(kShutdownRpc).on(ep).timeout(timeout_)();
    return 0;
  });
}

}  // namespace dango::compose
