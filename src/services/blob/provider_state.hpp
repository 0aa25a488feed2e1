#pragma once
// The inside of blob::Provider: its targets by name, its staging buffers, and one method per RPC
// (provider.cpp registers them). Every method answers failures in its reply, never by throwing.

#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "dango/rpc/engine.hpp"
#include "dango/rpc/request.hpp"
#include "dango/services/blob/options.hpp"
#include "services/blob/backend.hpp"
#include "services/blob/protocol.hpp"
#include "services/blob/staging_pool.hpp"
#include "services/blob/transfer.hpp"

namespace dango::blob {

// One hosted target. Requests hold it by shared_ptr, so a destroyed target goes (and deletes its
// files) once the last request using it has finished.
struct HostedTarget {
  TargetConfig config;
  std::unique_ptr<Backend> backend;
};

class ProviderState {
 public:
  ProviderState(rpc::Engine& engine, ProviderOptions options, thread::Pool pool);

  // Administration; throw blob::Error or ConfigError.
  void create_target(const TargetConfig& config, std::string_view config_path);
  void destroy_target(std::string_view name);
  std::vector<TargetInfo> targets() const;
  nlohmann::json config() const;

  // The RPCs (protocol.hpp).
  protocol::OpenReply open(const std::string& target);
  protocol::CreateReply create(const std::string& target, uint64_t size);
  protocol::Outcome write(const rpc::Request& request, const std::string& target, RegionId id,
                          uint64_t offset, const protocol::Payload& payload);
  protocol::Outcome persist(const std::string& target, RegionId id, uint64_t offset, uint64_t size);
  protocol::CreateReply create_write_persist(const rpc::Request& request, const std::string& target,
                                             const protocol::Payload& payload);
  protocol::ReadReply read(const rpc::Request& request, const std::string& target, RegionId id,
                           uint64_t offset, uint64_t size, const protocol::Destination& dest);
  protocol::SizeReply get_size(const std::string& target, RegionId id);
  protocol::Outcome erase(const std::string& target, RegionId id);
  protocol::MigrateReply migrate(const std::string& target, const std::vector<RegionId>& regions,
                                 const protocol::TargetRef& destination);

  // The target named `name`, or nullptr with `outcome` saying so.
  std::shared_ptr<HostedTarget> find(std::string_view name, protocol::Outcome& outcome) const;
  // The staging pool, made on first use (only file-like targets need it).
  StagingPool& staging();
  TransferContext transfer_context(const rpc::Endpoint& peer, Backend& backend);

 private:
  Status write_payload(const rpc::Endpoint& peer, Backend& backend, RegionId id, uint64_t offset,
                       const protocol::Payload& payload);

  rpc::Engine& engine_;
  ProviderOptions options_;
  thread::Pool pool_;
  mutable std::shared_mutex targets_mutex_;  // never held across I/O
  std::map<std::string, std::shared_ptr<HostedTarget>, std::less<>> targets_;
  std::mutex staging_mutex_;
  std::unique_ptr<StagingPool> staging_;
};

// Status -> reply outcome.
inline protocol::Outcome to_outcome(Status status) {
  return {.code = status.code, .message = std::move(status.message)};
}

}  // namespace dango::blob
