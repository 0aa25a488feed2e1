// The statistics collector: one Prometheus series set per (RPC, provider, peer) and side, found
// by a string key built in a per-thread buffer (no allocation once the series exists).

#include "dango/services/monitor/statistics.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <shared_mutex>
#include <sstream>
#include <string>
#include <unordered_map>

namespace dango::monitor {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;
using prometheus::Labels;

// Latency buckets from 1 µs to 10 s, three per decade.
const Histogram::BucketBoundaries& latency_buckets() {
  static const Histogram::BucketBoundaries buckets = {
      1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3,
      5e-3, 1e-2, 2e-2, 5e-2, 0.1,  0.2,  0.5,  1.0,  2.0,  5.0,  10.0};
  return buckets;
}

double seconds(std::chrono::nanoseconds ns) { return static_cast<double>(ns.count()) / 1e9; }

constexpr std::array<const char*, 5> kOutcomeNames = {"ok", "remote_error", "timeout",
                                                      "network_error", "shutdown"};

nlohmann::json histogram_json(const Histogram& histogram) {
  auto metric = histogram.Collect().histogram;
  nlohmann::json buckets = nlohmann::json::array();
  for (const auto& bucket : metric.bucket) {
    if (std::isinf(bucket.upper_bound)) continue;  // the +Inf bucket is "count"
    buckets.push_back({bucket.upper_bound, bucket.cumulative_count});
  }
  return {{"count", metric.sample_count}, {"sum_s", metric.sample_sum}, {"buckets", buckets}};
}

}  // namespace

struct Statistics::Impl {
  struct ClientSeries {
    Labels labels;
    std::array<Counter*, kOutcomeNames.size()> calls{};
    Counter* bytes_sent = nullptr;
    Counter* bytes_received = nullptr;
    Histogram* latency = nullptr;
  };
  struct ServerSeries {
    Labels labels;
    Counter* ok;
    Counter* failed;
    Counter* bytes_received;
    Counter* bytes_sent;
    Counter* bulk_bytes;
    Histogram* queued;
    Histogram* handler;
    Histogram* bulk;
  };
  struct BulkSeries {
    Labels labels;
    Counter* ok;
    Counter* failed;
    Counter* bytes;
    Histogram* duration;
  };
  template <class Series>
  struct Table {
    mutable std::shared_mutex mutex;
    std::unordered_map<std::string, std::unique_ptr<Series>> series;
  };

  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  Family<Counter>& client_calls = prometheus::BuildCounter()
                                      .Name("dango_rpc_client_calls_total")
                                      .Help("RPCs issued, by outcome")
                                      .Register(*registry);
  Family<Counter>& client_bytes = prometheus::BuildCounter()
                                      .Name("dango_rpc_client_bytes_total")
                                      .Help("Encoded arguments sent and results received")
                                      .Register(*registry);
  Family<Histogram>& client_latency = prometheus::BuildHistogram()
                                          .Name("dango_rpc_client_latency_seconds")
                                          .Help("From the call to its answer")
                                          .Register(*registry);
  Family<Counter>& server_requests = prometheus::BuildCounter()
                                         .Name("dango_rpc_server_requests_total")
                                         .Help("Requests served, by outcome")
                                         .Register(*registry);
  Family<Counter>& server_bytes = prometheus::BuildCounter()
                                      .Name("dango_rpc_server_bytes_total")
                                      .Help("Arguments received, results sent, bulk moved")
                                      .Register(*registry);
  Family<Histogram>& server_stage = prometheus::BuildHistogram()
                                        .Name("dango_rpc_server_stage_seconds")
                                        .Help("Time per stage: queued in the pool, handler, bulk")
                                        .Register(*registry);
  Family<Counter>& bulk_transfers = prometheus::BuildCounter()
                                        .Name("dango_bulk_transfers_total")
                                        .Help("Pulls and pushes issued, by outcome")
                                        .Register(*registry);
  Family<Counter>& bulk_bytes = prometheus::BuildCounter()
                                    .Name("dango_bulk_bytes_total")
                                    .Help("Bytes moved by successful pulls and pushes")
                                    .Register(*registry);
  Family<Histogram>& bulk_duration = prometheus::BuildHistogram()
                                         .Name("dango_bulk_duration_seconds")
                                         .Help("Duration of pulls and pushes")
                                         .Register(*registry);
  Family<Gauge>& pool_queued = prometheus::BuildGauge()
                                   .Name("dango_pool_queued_ults")
                                   .Help("ULTs waiting to run in each pool, when last sampled")
                                   .Register(*registry);
  Family<Gauge>& stream_utilisation = prometheus::BuildGauge()
                                          .Name("dango_xstream_utilisation")
                                          .Help("Fraction of the last sampling interval an "
                                                "execution stream was not asleep")
                                          .Register(*registry);

  Table<ClientSeries> clients;
  Table<ServerSeries> servers;
  Table<BulkSeries> bulks;

  std::mutex sample_mutex;
  std::map<std::string, thread::StreamActivity> last_activity;  // by stream name
  std::map<std::string, Gauge*> pool_gauges;
  std::map<std::string, Gauge*> stream_gauges;

  // "rpc\x1fprovider\x1fpeer" in a per-thread buffer that keeps its capacity.
  static const std::string& key_of(std::string_view a, unsigned provider, std::string_view b) {
    thread_local std::string key;
    key.assign(a);
    key += '\x1f';
    key += std::to_string(provider);
    key += '\x1f';
    key += b;
    return key;
  }

  // The series under `key`, made by `make()` the first time.
  template <class Series, class Make>
  static Series& find_or_add(Table<Series>& table, const std::string& key, Make&& make) {
    {
      std::shared_lock lock(table.mutex);
      if (auto it = table.series.find(key); it != table.series.end()) return *it->second;
    }
    std::unique_lock lock(table.mutex);
    auto& slot = table.series[key];
    if (!slot) slot = std::make_unique<Series>(make());
    return *slot;
  }

  ClientSeries make_client(const Labels& labels) {
    ClientSeries s{.labels = labels};
    for (size_t i = 0; i < kOutcomeNames.size(); ++i) {
      Labels with = labels;
      with["outcome"] = kOutcomeNames[i];
      s.calls[i] = &client_calls.Add(with);
    }
    s.bytes_sent = &client_bytes.Add(with_label(labels, "direction", "sent"));
    s.bytes_received = &client_bytes.Add(with_label(labels, "direction", "received"));
    s.latency = &client_latency.Add(labels, latency_buckets());
    return s;
  }
  ServerSeries make_server(const Labels& labels) {
    return {.labels = labels,
            .ok = &server_requests.Add(with_label(labels, "outcome", "ok")),
            .failed = &server_requests.Add(with_label(labels, "outcome", "error")),
            .bytes_received = &server_bytes.Add(with_label(labels, "direction", "received")),
            .bytes_sent = &server_bytes.Add(with_label(labels, "direction", "sent")),
            .bulk_bytes = &server_bytes.Add(with_label(labels, "direction", "bulk")),
            .queued = &server_stage.Add(with_label(labels, "stage", "queued"), latency_buckets()),
            .handler = &server_stage.Add(with_label(labels, "stage", "handler"), latency_buckets()),
            .bulk = &server_stage.Add(with_label(labels, "stage", "bulk"), latency_buckets())};
  }
  BulkSeries make_bulk(const Labels& labels) {
    return {.labels = labels,
            .ok = &bulk_transfers.Add(with_label(labels, "outcome", "ok")),
            .failed = &bulk_transfers.Add(with_label(labels, "outcome", "error")),
            .bytes = &bulk_bytes.Add(labels),
            .duration = &bulk_duration.Add(labels, latency_buckets())};
  }
  static Labels with_label(Labels labels, const std::string& name, const std::string& value) {
    labels[name] = value;
    return labels;
  }
  static Labels rpc_labels(std::string_view rpc, unsigned provider, std::string_view peer) {
    return {{"rpc", std::string(rpc)}, {"provider", std::to_string(provider)}, {"peer", std::string(peer)}};
  }
};

Statistics::Statistics() : impl_(std::make_unique<Impl>()) {}
Statistics::~Statistics() = default;

std::shared_ptr<prometheus::Registry> Statistics::registry() const { return impl_->registry; }

void Statistics::on_call(const rpc::CallEvent& e) {
  const auto& key = Impl::key_of(e.rpc, e.provider_id, e.peer);
  auto& s = Impl::find_or_add(impl_->clients, key, [&] {
    return impl_->make_client(Impl::rpc_labels(e.rpc, e.provider_id, e.peer));
  });
  s.calls[static_cast<size_t>(e.outcome)]->Increment();
  s.bytes_sent->Increment(static_cast<double>(e.request_bytes));
  if (e.response_bytes > 0) s.bytes_received->Increment(static_cast<double>(e.response_bytes));
  s.latency->Observe(seconds(e.latency));
}

void Statistics::on_request(const rpc::RequestEvent& e) {
  const auto& key = Impl::key_of(e.rpc, e.provider_id, e.peer);
  auto& s = Impl::find_or_add(impl_->servers, key, [&] {
    return impl_->make_server(Impl::rpc_labels(e.rpc, e.provider_id, e.peer));
  });
  (e.failed ? s.failed : s.ok)->Increment();
  s.bytes_received->Increment(static_cast<double>(e.request_bytes));
  if (e.response_bytes > 0) s.bytes_sent->Increment(static_cast<double>(e.response_bytes));
  s.queued->Observe(seconds(e.queued));
  s.handler->Observe(seconds(e.handler));
  if (e.bulk_bytes > 0 || e.bulk.count() > 0) {
    s.bulk_bytes->Increment(static_cast<double>(e.bulk_bytes));
    s.bulk->Observe(seconds(e.bulk));
  }
}

void Statistics::on_bulk(const rpc::BulkEvent& e) {
  const char* op = e.pull ? "pull" : "push";
  const auto& key = Impl::key_of(op, 0, e.peer);
  auto& s = Impl::find_or_add(impl_->bulks, key, [&] {
    return impl_->make_bulk({{"op", op}, {"peer", std::string(e.peer)}});
  });
  (e.failed ? s.failed : s.ok)->Increment();
  if (!e.failed) s.bytes->Increment(static_cast<double>(e.bytes));
  s.duration->Observe(seconds(e.elapsed));
}

void Statistics::sample(const thread::Runtime& runtime) {
  std::lock_guard lock(impl_->sample_mutex);
  for (const thread::Pool& pool : runtime.pools()) {
    std::string name(pool.name());
    auto& gauge = impl_->pool_gauges[name];
    if (gauge == nullptr) gauge = &impl_->pool_queued.Add({{"pool", name}});
    gauge->Set(static_cast<double>(pool.size()));
  }
  for (const thread::StreamActivity& now : runtime.activity()) {
    thread::StreamActivity before{.name = now.name, .alive = {}, .slept = {}};
    if (auto it = impl_->last_activity.find(now.name); it != impl_->last_activity.end()) {
      before = it->second;
    }
    const double alive = static_cast<double>((now.alive - before.alive).count());
    const double slept = static_cast<double>((now.slept - before.slept).count());
    auto& gauge = impl_->stream_gauges[now.name];
    if (gauge == nullptr) gauge = &impl_->stream_utilisation.Add({{"xstream", now.name}});
    gauge->Set(alive > 0 ? std::clamp(1.0 - slept / alive, 0.0, 1.0) : 0.0);
    impl_->last_activity[now.name] = now;
  }
}

std::string Statistics::prometheus_text() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, impl_->registry->Collect());
  return out.str();
}

nlohmann::json Statistics::to_json() const {
  auto labels_json = [](const prometheus::Labels& labels) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [name, value] : labels) j[name] = value;
    return j;
  };
  nlohmann::json client = nlohmann::json::array();
  {
    std::shared_lock lock(impl_->clients.mutex);
    for (const auto& [key, s] : impl_->clients.series) {
      nlohmann::json calls = nlohmann::json::object();
      for (size_t i = 0; i < kOutcomeNames.size(); ++i) calls[kOutcomeNames[i]] = s->calls[i]->Value();
      client.push_back({{"labels", labels_json(s->labels)},
                        {"calls", calls},
                        {"bytes_sent", s->bytes_sent->Value()},
                        {"bytes_received", s->bytes_received->Value()},
                        {"latency", histogram_json(*s->latency)}});
    }
  }
  nlohmann::json server = nlohmann::json::array();
  {
    std::shared_lock lock(impl_->servers.mutex);
    for (const auto& [key, s] : impl_->servers.series) {
      server.push_back({{"labels", labels_json(s->labels)},
                        {"requests", {{"ok", s->ok->Value()}, {"error", s->failed->Value()}}},
                        {"bytes_received", s->bytes_received->Value()},
                        {"bytes_sent", s->bytes_sent->Value()},
                        {"bulk_bytes", s->bulk_bytes->Value()},
                        {"queued", histogram_json(*s->queued)},
                        {"handler", histogram_json(*s->handler)},
                        {"bulk", histogram_json(*s->bulk)}});
    }
  }
  nlohmann::json bulk = nlohmann::json::array();
  {
    std::shared_lock lock(impl_->bulks.mutex);
    for (const auto& [key, s] : impl_->bulks.series) {
      bulk.push_back({{"labels", labels_json(s->labels)},
                      {"transfers", {{"ok", s->ok->Value()}, {"error", s->failed->Value()}}},
                      {"bytes", s->bytes->Value()},
                      {"duration", histogram_json(*s->duration)}});
    }
  }
  nlohmann::json pools = nlohmann::json::object();
  nlohmann::json streams = nlohmann::json::object();
  {
    std::lock_guard lock(impl_->sample_mutex);
    for (const auto& [name, gauge] : impl_->pool_gauges) pools[name] = gauge->Value();
    for (const auto& [name, gauge] : impl_->stream_gauges) streams[name] = gauge->Value();
  }
  return {{"client", client}, {"server", server}, {"bulk", bulk}, {"pools", pools},
          {"xstreams", streams}};
}

}  // namespace dango::monitor
