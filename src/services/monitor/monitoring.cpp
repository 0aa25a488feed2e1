// Monitoring of one engine: the collector, its sampler thread, the Prometheus HTTP endpoint
// (cpp-httplib), the stats RPC and the JSON dump.

#include "dango/services/monitor/monitoring.hpp"

#include <httplib.h>
#include <sys/socket.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "dango/common/config.hpp"
#include "dango/common/error.hpp"
#include "dango/common/log.hpp"

namespace dango::monitor {

MonitoringOptions MonitoringOptions::from_json(const nlohmann::json& json, std::string_view path) {
  MonitoringOptions options;
  config::ConfigReader reader(json, std::string(path));
  reader.get("prometheus", options.prometheus);
  reader.get("dump", options.dump);
  reader.get("sample_interval_ms", options.sample_interval);
  if (options.sample_interval.count() <= 0) {
    config::fail(config::join(path, "sample_interval_ms"), "must be positive");
  }
  reader.finish();
  return options;
}

nlohmann::json MonitoringOptions::to_json() const {
  return {{"prometheus", prometheus},
          {"dump", dump},
          {"sample_interval_ms", sample_interval.count()}};
}

struct Monitoring::Impl {
  rpc::Engine* engine;
  MonitoringOptions options;
  std::shared_ptr<Statistics> statistics = std::make_shared<Statistics>();
  httplib::Server http;
  std::thread http_thread;
  std::atomic<bool> http_returned = false;
  std::string prometheus_address;

  std::mutex mutex;
  std::condition_variable wake;
  bool stopped = false;
  std::thread sampler;

  void sample_until_stopped() {
    std::unique_lock lock(mutex);
    while (!stopped) {
      wake.wait_for(lock, options.sample_interval);
      if (!stopped) statistics->sample(engine->runtime());
    }
  }

  void stop() {
    {
      std::lock_guard lock(mutex);
      if (stopped) return;
      stopped = true;
    }
    wake.notify_all();
    if (sampler.joinable()) sampler.join();
    statistics->sample(engine->runtime());
    engine->set_monitor(nullptr);
    if (http_thread.joinable()) {
      http.stop();
      http_thread.join();
    }
    if (!options.dump.empty()) {
      std::ofstream out(options.dump, std::ios::trunc);
      out << statistics->to_json().dump(2) << "\n";
      if (!out) log::get("monitor")->error("cannot write the statistics to {}", options.dump);
    }
  }
};

Monitoring::Monitoring(rpc::Engine& engine, MonitoringOptions options)
    : impl_(std::make_shared<Impl>()) {
  impl_->engine = &engine;
  impl_->options = std::move(options);
  if (!impl_->options.prometheus.empty()) start_http();
  std::weak_ptr<Statistics> weak_statistics = impl_->statistics;
  engine.define(kStatsRpc, [weak_statistics]() -> std::string {
    auto statistics = weak_statistics.lock();
    if (!statistics) throw Error("monitoring has stopped in this process");
    return statistics->to_json().dump();
  });
  engine.set_monitor(impl_->statistics);
  impl_->sampler = std::thread([impl = impl_.get()] { impl->sample_until_stopped(); });
  std::weak_ptr<Impl> weak = impl_;
  engine.on_finalize([weak] {
    if (auto impl = weak.lock()) impl->stop();
  });
}

void Monitoring::start_http() {
  const std::string& address = impl_->options.prometheus;
  const auto colon = address.rfind(':');
  int port = -1;
  try {
    if (colon != std::string::npos) port = std::stoi(address.substr(colon + 1));
  } catch (const std::exception&) {
  }
  if (colon == std::string::npos || port < 0 || port > 65535) {
    throw ConfigError("monitoring.prometheus: \"" + address + "\" is not host:port");
  }
  const std::string host = address.substr(0, colon);
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let a second process
  // share the port silently instead of failing to bind.
  impl_->http.set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  std::weak_ptr<Statistics> weak = impl_->statistics;
  impl_->http.Get("/metrics", [weak](const httplib::Request&, httplib::Response& response) {
    if (auto statistics = weak.lock()) {
      response.set_content(statistics->prometheus_text(), "text/plain; version=0.0.4");
    } else {
      response.status = 503;
    }
  });
  const int bound = port == 0 ? impl_->http.bind_to_any_port(host)
                              : (impl_->http.bind_to_port(host, port) ? port : -1);
  if (bound < 0) {
    throw ConfigError("monitoring.prometheus: cannot serve HTTP at \"" + address +
                      "\" (address in use or not local)");
  }
  impl_->prometheus_address = host + ":" + std::to_string(bound);
  impl_->http_thread = std::thread([impl = impl_.get()] {
    impl->http.listen_after_bind();
    impl->http_returned = true;
  });
  // httplib's stop() does nothing until the server's loop has started, and a stop that comes
  // earlier would leave the loop running and its join waiting forever: return only once the
  // loop runs (or has already ended).
  while (!impl_->http.is_running() && !impl_->http_returned) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

Monitoring::~Monitoring() {
  impl_->stop();
  if (!impl_->engine->finalized()) impl_->engine->deregister(kStatsRpc);
}

void Monitoring::stop() { impl_->stop(); }

const Statistics& Monitoring::statistics() const { return *impl_->statistics; }

const std::string& Monitoring::prometheus_address() const { return impl_->prometheus_address; }

nlohmann::json fetch_statistics(rpc::Engine& engine, const rpc::Endpoint& endpoint,
                                std::chrono::milliseconds timeout) {
  std::string text = engine.rpc<std::string()>(kStatsRpc).on(endpoint).timeout(timeout)();
  return nlohmann::json::parse(text);
}

}  // namespace dango::monitor
