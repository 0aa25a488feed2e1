// Formats statistics as aligned text tables (see stats_table.hpp).

#include "stats_table.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

namespace dango::ctl {
namespace {

using Row = std::vector<std::string>;

// `json[key]` when present, else an empty (null) value that iterates as nothing.
const nlohmann::json& field(const nlohmann::json& json, const char* key) {
  static const nlohmann::json kNothing;
  auto it = json.find(key);
  return it == json.end() ? kNothing : *it;
}

std::string render(const std::string& title, const Row& header, const std::vector<Row>& rows) {
  std::string out = title + "\n";
  if (rows.empty()) return out + "  (none)\n\n";
  std::vector<size_t> widths(header.size());
  for (size_t i = 0; i < header.size(); ++i) widths[i] = header[i].size();
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  auto line = [&](const Row& row) {
    std::string text = " ";
    // The first columns (names) are left-aligned, figures right-aligned.
    for (size_t i = 0; i < row.size(); ++i) {
      text += i < 3 ? fmt::format(" {:<{}}", row[i], widths[i])
                    : fmt::format(" {:>{}}", row[i], widths[i]);
    }
    return text + "\n";
  };
  out += line(header);
  for (const auto& row : rows) out += line(row);
  return out + "\n";
}

std::string duration(double seconds) {
  if (seconds < 1e-3) return fmt::format("{:.0f}us", seconds * 1e6);
  if (seconds < 1) return fmt::format("{:.1f}ms", seconds * 1e3);
  return fmt::format("{:.2f}s", seconds);
}

// The upper bound of the bucket holding quantile `q` ("-" without samples, ">X" beyond the
// last bound).
std::string quantile(const nlohmann::json& histogram, double q) {
  const auto& count_json = field(histogram, "count");
  const double count = count_json.is_number() ? count_json.get<double>() : 0.0;
  if (count <= 0) return "-";
  const double target = q * count;
  double last = 0;
  for (const auto& bucket : field(histogram, "buckets")) {
    last = bucket[0].get<double>();
    if (bucket[1].get<double>() >= target) return "<" + duration(last);
  }
  return ">" + duration(last);
}

std::string bytes(uint64_t n) {
  if (n < 10 * 1024) return fmt::format("{}B", n);
  if (n < 10 * 1024 * 1024) return fmt::format("{}KiB", n >> 10);
  return fmt::format("{}MiB", n >> 20);
}

std::string label(const nlohmann::json& entry, const char* name) {
  const auto& value = field(field(entry, "labels"), name);
  return value.is_string() ? value.get<std::string>() : "";
}

uint64_t number(const nlohmann::json& j, const char* a, const char* b = nullptr) {
  const nlohmann::json& v = b ? field(field(j, a), b) : field(j, a);
  return v.is_number() ? v.get<uint64_t>() : 0;
}

}  // namespace

std::string stats_table(const nlohmann::json& stats) {
  std::vector<Row> server;
  for (const auto& s : field(stats, "server")) {
    server.push_back({label(s, "rpc"), label(s, "provider"), label(s, "peer"),
                      std::to_string(number(s, "requests", "ok") + number(s, "requests", "error")),
                      std::to_string(number(s, "requests", "error")),
                      quantile(field(s, "queued"), 0.5), quantile(field(s, "handler"), 0.5),
                      quantile(field(s, "handler"), 0.99), quantile(field(s, "bulk"), 0.5),
                      bytes(number(s, "bytes_received")), bytes(number(s, "bytes_sent")),
                      bytes(number(s, "bulk_bytes"))});
  }
  std::vector<Row> client;
  for (const auto& c : field(stats, "client")) {
    uint64_t calls = 0;
    for (const auto& [outcome, n] : field(c, "calls").items()) {
      calls += n.get<uint64_t>();
    }
    client.push_back({label(c, "rpc"), label(c, "provider"), label(c, "peer"),
                      std::to_string(calls), std::to_string(calls - number(c, "calls", "ok")),
                      quantile(field(c, "latency"), 0.5), quantile(field(c, "latency"), 0.99),
                      bytes(number(c, "bytes_sent")), bytes(number(c, "bytes_received"))});
  }
  std::vector<Row> bulk;
  for (const auto& b : field(stats, "bulk")) {
    bulk.push_back({label(b, "op"), label(b, "peer"), "",
                    std::to_string(number(b, "transfers", "ok") + number(b, "transfers", "error")),
                    std::to_string(number(b, "transfers", "error")),
                    quantile(field(b, "duration"), 0.5), bytes(number(b, "bytes"))});
  }
  std::vector<Row> pools;
  for (const auto& [name, value] : field(stats, "pools").items()) {
    pools.push_back({name, "", "", fmt::format("{}", value.get<double>())});
  }
  for (const auto& [name, value] : field(stats, "xstreams").items()) {
    pools.push_back({name, "xstream", "", fmt::format("{:.1f}%", 100 * value.get<double>())});
  }
  return render("RPCs served (server side)",
                {"rpc", "provider", "peer", "requests", "errors", "queued p50", "handler p50",
                 "handler p99", "bulk p50", "bytes in", "bytes out", "bulk bytes"},
                server) +
         render("RPCs called (client side)",
                {"rpc", "provider", "peer", "calls", "errors", "latency p50", "latency p99",
                 "bytes out", "bytes in"},
                client) +
         render("Bulk transfers", {"op", "peer", "", "transfers", "errors", "p50", "bytes"}, bulk) +
         render("Pools (queued ULTs) and execution streams (utilisation)",
                {"name", "kind", "", "value"}, pools);
}

}  // namespace dango::ctl
