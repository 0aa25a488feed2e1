// Monitoring: RPC statistics per name x provider x peer on both sides, stages, bulk, pools and
// streams; the Prometheus endpoint scraped with a plain HTTP client and parsed; the stats RPC;
// the JSON dump; configuration errors.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "dango/common/error.hpp"
#include "dango/dango.hpp"
#include "dango/services/monitor/monitoring.hpp"

namespace dango::monitor {
namespace {

// A server on its own execution stream (so it serves while the test thread blocks) and a
// client on the test's thread.
struct Pair {
  rpc::Engine server{rpc::EngineOptions{
      .address = "tcp://127.0.0.1:0",
      .threads = {.pools = {{.name = "server", .kind = thread::PoolKind::kFifoWait}},
                  .xstreams = {{.name = "server", .pools = {"server"}}},
                  .progress_pool = "server",
                  .rpc_pool = "server"}}};
  rpc::Engine client{"tcp"};
  rpc::Endpoint endpoint = client.lookup(server.address());
};

// GET http://address/path with a plain socket; the whole response (status line, headers, body).
std::string http_get(const std::string& address, const std::string& path) {
  auto colon = address.rfind(':');
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot connect to " + address);
  }
  std::string request = "GET " + path + " HTTP/1.0\r\nHost: " + address + "\r\n\r\n";
  ::send(fd, request.data(), request.size(), 0);
  std::string response;
  char buffer[4096];
  ssize_t n;
  while ((n = ::recv(fd, buffer, sizeof buffer, 0)) > 0) response.append(buffer, static_cast<size_t>(n));
  ::close(fd);
  return response;
}

// Samples of the Prometheus text format: "name{labels}" -> value (comments skipped).
std::map<std::string, double> parse_prometheus(const std::string& text) {
  std::map<std::string, double> samples;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return samples;
}

TEST(MonitorStatistics, CountsCallsOnBothSidesPerRpcProviderAndPeer) {
  Pair p;
  auto server_stats = std::make_shared<Statistics>();
  auto client_stats = std::make_shared<Statistics>();
  p.server.set_monitor(server_stats);
  p.client.set_monitor(client_stats);
  p.server.define("add", [](int a, int b) { return a + b; }, {.provider_id = 7});
  auto add = p.client.rpc<int(int, int)>("add").on(p.endpoint).with(7);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(add(i, 1), i + 1);
  EXPECT_THROW(p.client.rpc<int(int, int)>("add").on(p.endpoint).with(8)(1, 1), RemoteError);

  auto text = client_stats->prometheus_text();
  auto samples = parse_prometheus(text);
  const std::string labels =
      "outcome=\"ok\",peer=\"" + p.server.address() + "\",provider=\"7\",rpc=\"add\"";
  EXPECT_EQ(samples["dango_rpc_client_calls_total{" + labels + "}"], 3) << text;
  EXPECT_EQ(samples["dango_rpc_client_calls_total{outcome=\"remote_error\",peer=\"" +
                    p.server.address() + "\",provider=\"8\",rpc=\"add\"}"],
            1);
  EXPECT_EQ(samples["dango_rpc_client_latency_seconds_count{peer=\"" + p.server.address() +
                    "\",provider=\"7\",rpc=\"add\"}"],
            3);

  auto json = server_stats->to_json();
  ASSERT_EQ(json["server"].size(), 1u) << json.dump(2);  // provider 8 never reached a handler
  const auto& served = json["server"][0];
  EXPECT_EQ(served["labels"]["rpc"], "add");
  EXPECT_EQ(served["labels"]["provider"], "7");
  EXPECT_EQ(served["requests"]["ok"], 3);
  EXPECT_EQ(served["queued"]["count"], 3);
  EXPECT_EQ(served["handler"]["count"], 3);
  EXPECT_GT(served["bytes_received"].get<double>(), 0);
}

TEST(MonitorStatistics, SamplesPoolQueuesAndStreamUtilisation) {
  Pair p;
  Statistics stats;
  stats.sample(p.server.runtime());
  auto json = stats.to_json();
  EXPECT_TRUE(json["pools"].contains("server")) << json.dump(2);
  EXPECT_TRUE(json["xstreams"].contains("server")) << json.dump(2);
  double utilisation = json["xstreams"]["server"];
  EXPECT_GE(utilisation, 0.0);
  EXPECT_LE(utilisation, 1.0);
  EXPECT_NE(stats.prometheus_text().find("dango_xstream_utilisation{xstream=\"server\"}"),
            std::string::npos);
}

TEST(Monitoring, PrometheusEndpointServesTheMetricsOverHttp) {
  Pair p;
  Monitoring monitoring(p.server, {.prometheus = "127.0.0.1:0", .sample_interval = std::chrono::milliseconds(20)});
  ASSERT_FALSE(monitoring.prometheus_address().empty());
  p.server.define("ping", [] { return 1; });
  p.client.rpc<int()>("ping").on(p.endpoint)();
  std::string response = http_get(monitoring.prometheus_address(), "/metrics");
  ASSERT_NE(response.find("200 OK"), std::string::npos) << response;
  auto body = response.substr(response.find("\r\n\r\n") + 4);
  auto samples = parse_prometheus(body);
  bool found = false;
  for (const auto& [name, value] : samples) {
    if (name.starts_with("dango_rpc_server_requests_total{") &&
        name.find("rpc=\"ping\"") != std::string::npos &&
        name.find("outcome=\"ok\"") != std::string::npos) {
      EXPECT_EQ(value, 1);
      found = true;
    }
  }
  EXPECT_TRUE(found) << body;
  EXPECT_NE(body.find("# TYPE dango_rpc_server_stage_seconds histogram"), std::string::npos);
}

TEST(Monitoring, StatsRpcGivesAClientTheServersStatistics) {
  Pair p;
  Monitoring monitoring(p.server, {});
  p.server.define("ping", [] { return 1; });
  p.client.rpc<int()>("ping").on(p.endpoint)();
  auto json = fetch_statistics(p.client, p.endpoint);
  bool found = false;
  for (const auto& served : json["server"]) {
    if (served["labels"]["rpc"] == "ping") {
      EXPECT_EQ(served["requests"]["ok"], 1);
      found = true;
    }
  }
  EXPECT_TRUE(found) << json.dump(2);
}

TEST(Monitoring, FetchFromAProcessWithoutMonitoringIsARemoteError) {
  Pair p;
  EXPECT_THROW(fetch_statistics(p.client, p.endpoint), RemoteError);
}

TEST(Monitoring, StopWritesTheJsonDumpAndUninstallsTheMonitor) {
  Pair p;
  auto path = std::filesystem::temp_directory_path() /
              ("dango-monitor-dump-" + std::to_string(::getpid()) + ".json");
  {
    Monitoring monitoring(p.server, {.dump = path.string()});
    p.server.define("ping", [] { return 1; });
    p.client.rpc<int()>("ping").on(p.endpoint)();
    monitoring.stop();
    std::ifstream in(path);
    ASSERT_TRUE(in.good());
    auto json = nlohmann::json::parse(in);
    ASSERT_EQ(json["server"].size(), 1u);
    EXPECT_EQ(json["server"][0]["requests"]["ok"], 1);
    // Stopped: later calls are not counted.
    p.client.rpc<int()>("ping").on(p.endpoint)();
    EXPECT_EQ(monitoring.statistics().to_json()["server"][0]["requests"]["ok"], 1);
  }
  std::filesystem::remove(path);
}

TEST(Monitoring, EngineFinalizeDumpsTheStatistics) {
  auto path = std::filesystem::temp_directory_path() /
              ("dango-monitor-final-" + std::to_string(::getpid()) + ".json");
  {
    rpc::Engine engine{"tcp://127.0.0.1:0"};
    Monitoring monitoring(engine, {.dump = path.string()});
    engine.finalize();
    EXPECT_TRUE(std::filesystem::exists(path));
  }
  std::filesystem::remove(path);
}

TEST(MonitoringOptions, ReadFromJsonWithErrorsNamingTheKey) {
  auto options = MonitoringOptions::from_json(
      nlohmann::json::parse(R"({"prometheus": "127.0.0.1:9464", "dump": "s.json", "sample_interval_ms": 250})"),
      "monitoring");
  EXPECT_EQ(options.prometheus, "127.0.0.1:9464");
  EXPECT_EQ(options.dump, "s.json");
  EXPECT_EQ(options.sample_interval, std::chrono::milliseconds(250));
  EXPECT_EQ(MonitoringOptions::from_json(options.to_json()).to_json(), options.to_json());
  for (const char* bad : {R"({"promethus": "x"})", R"({"sample_interval_ms": 0})",
                          R"({"dump": 3})"}) {
    try {
      MonitoringOptions::from_json(nlohmann::json::parse(bad), "monitoring");
      ADD_FAILURE() << "accepted " << bad;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("monitoring."), std::string::npos) << e.what();
    }
  }
}

TEST(Monitoring, AnAddressThatCannotBeBoundIsAConfigError) {
  Pair p;
  Monitoring first(p.server, {.prometheus = "127.0.0.1:0"});
  rpc::Engine other{"tcp://127.0.0.1:0"};
  EXPECT_THROW(Monitoring(other, {.prometheus = first.prometheus_address()}), ConfigError);
}

// A monitoring stopped right after it started (a daemon reconfigured at once, a failed start
// unwinding) still stops: its HTTP endpoint may not have begun serving yet.
TEST(Monitoring, OneDestroyedRightAfterItsStartStops) {
  Pair p;
  for (int i = 0; i < 200; ++i) {
    Monitoring monitoring(p.server, {.prometheus = "127.0.0.1:0"});
  }
  Monitoring last(p.server, {.prometheus = "127.0.0.1:0"});
  EXPECT_NE(http_get(last.prometheus_address(), "/metrics").find("200 OK"), std::string::npos);
}

}  // namespace
}  // namespace dango::monitor
