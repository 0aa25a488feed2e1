#pragma once
// Statistics of one engine, kept as Prometheus metrics: installed as the engine's Monitor it
// counts every RPC per name x provider x peer on both sides (calls, outcomes, bytes, latency
// histograms; on the server, histograms of each stage: queued in the pool, handler, bulk), every
// bulk transfer, and, when sampled, the queue length of each pool and the utilisation of each
// execution stream.
//
//   auto stats = std::make_shared<dango::monitor::Statistics>();
//   engine.set_monitor(stats);
//   ... stats->prometheus_text(), stats->to_json()
//
// Cost per RPC and side: a lookup of its series under a shared lock and a few atomic
// increments plus one histogram observation; no allocation once a series exists.

#include <chrono>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "dango/rpc/monitor.hpp"
#include "dango/thread/runtime.hpp"

namespace prometheus {
class Registry;
}

namespace dango::monitor {

class Statistics final : public rpc::Monitor {
 public:
  Statistics();
  ~Statistics() override;
  Statistics(const Statistics&) = delete;
  Statistics& operator=(const Statistics&) = delete;

  // rpc::Monitor
  void on_call(const rpc::CallEvent& event) override;
  void on_request(const rpc::RequestEvent& event) override;
  void on_bulk(const rpc::BulkEvent& event) override;

  // Records the queue length of every pool of `runtime` and the utilisation of every stream
  // since the previous sample (the first sample measures from the runtime's start).
  void sample(const thread::Runtime& runtime);

  // Every metric in the Prometheus text exposition format (version 0.0.4).
  std::string prometheus_text() const;
  // Every series as JSON: {"client": [...], "server": [...], "bulk": [...], "pools": {...},
  // "xstreams": {...}}, each RPC series with its labels, counts, bytes and histograms
  // ({"count", "sum_s", "buckets": [[upper_bound_s, cumulative_count], ...]}).
  nlohmann::json to_json() const;

  // The registry holding the metrics (for an exporter).
  std::shared_ptr<prometheus::Registry> registry() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dango::monitor
