#pragma once
// Monitoring of one engine, as configured by the "monitoring" section of a process's JSON:
//   {"prometheus": "127.0.0.1:9464", "dump": "stats.json", "sample_interval_ms": 1000}
// It installs a Statistics as the engine's monitor, samples the engine's pools and execution
// streams, serves the metrics over HTTP in the Prometheus text format, answers the
// "dango.monitor.stats" RPC (what `dango-ctl stats` prints), and writes them as JSON when it
// stops.

#include <chrono>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "dango/rpc/engine.hpp"
#include "dango/services/monitor/statistics.hpp"

namespace dango::monitor {

// The RPC (provider 0) that returns a process's statistics as a JSON string.
inline constexpr std::string_view kStatsRpc = "dango.monitor.stats";

struct MonitoringOptions {
  // Serve http://<address>/metrics in the Prometheus text format ("127.0.0.1:9464"; port 0
  // picks a free one; default "": no HTTP endpoint).
  std::string prometheus{};
  // Write every statistic as JSON to this file when monitoring stops (default "": no dump).
  std::string dump{};
  // How often pool queue lengths and stream utilisation are sampled (default 1 s; JSON
  // "sample_interval_ms"). Shorter follows bursts better and costs a wake-up per interval.
  std::chrono::milliseconds sample_interval{1000};

  // Reads the keys above; unknown keys and wrong types are ConfigErrors naming the key path.
  static MonitoringOptions from_json(const nlohmann::json& json, std::string_view path = "");
  nlohmann::json to_json() const;
};

class Monitoring {
 public:
  // Starts monitoring `engine` (which must outlive this object or be finalized first). Throws
  // ConfigError when the Prometheus address cannot be bound, Error when the stats RPC is taken.
  Monitoring(rpc::Engine& engine, MonitoringOptions options);
  // Stops (see stop()).
  ~Monitoring();
  Monitoring(const Monitoring&) = delete;
  Monitoring& operator=(const Monitoring&) = delete;

  const Statistics& statistics() const;
  // The address the Prometheus endpoint is bound to ("127.0.0.1:40123"); "" without one.
  const std::string& prometheus_address() const;
  // Samples a last time, writes the JSON dump (if configured), closes the HTTP endpoint and
  // uninstalls the monitor. Also runs when the engine finalizes. Idempotent.
  void stop();

 private:
  void start_http();
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// The statistics of the process at `endpoint`, through its "dango.monitor.stats" RPC. Throws
// RemoteError when that process has no monitoring, TimeoutError/NetworkError as any call.
nlohmann::json fetch_statistics(rpc::Engine& engine, const rpc::Endpoint& endpoint,
                                std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace dango::monitor
