#pragma once
// Remote administration of a running dango-daemon: the RPCs every daemon serves (provider 0)
// and a client for them (what `dango-ctl` uses). Arguments and results are JSON text.

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "dango/rpc/engine.hpp"

namespace dango::compose {

// () -> the running configuration (effective, with resolved addresses and dependencies).
inline constexpr std::string_view kQueryRpc = "dango.compose.query";
// () -> [{"name", "type", "provider_id", "pool"}] in start order.
inline constexpr std::string_view kListProvidersRpc = "dango.compose.list_providers";
// (provider JSON) -> its effective entry; validated like a config entry, started at once.
inline constexpr std::string_view kAddProviderRpc = "dango.compose.add_provider";
// (name) -> (); refused while another provider depends on it.
inline constexpr std::string_view kRemoveProviderRpc = "dango.compose.remove_provider";
// () -> (); the daemon stops cleanly after answering.
inline constexpr std::string_view kShutdownRpc = "dango.compose.shutdown";

// Talks to the daemon at one address. Every call throws TimeoutError ("<address>: no answer
// within N ms ...") when the process does not answer, NetworkError when it cannot be reached,
// Error when it is a Dango process but not a daemon, RemoteError (or ConfigError for a rejected
// configuration) carrying the daemon's message otherwise.
class AdminClient {
 public:
  // `engine` (a client engine is enough) must outlive this object. No connection is made yet.
  AdminClient(rpc::Engine& engine, std::string address,
              std::chrono::milliseconds timeout = std::chrono::seconds(5));

  const std::string& address() const { return address_; }
  nlohmann::json query() const;
  nlohmann::json list_providers() const;
  nlohmann::json add_provider(const nlohmann::json& provider) const;
  void remove_provider(std::string_view name) const;
  // The process's monitoring statistics (monitor::fetch_statistics).
  nlohmann::json stats() const;
  void shutdown() const;

 private:
  template <class F>
  auto translate(std::string_view what, F&& call) const;

  rpc::Engine& engine_;
  std::string address_;
  std::chrono::milliseconds timeout_;
};

}  // namespace dango::compose
