#pragma once
// The statistics of a process (monitor::Statistics::to_json) as tables for people.

#include <nlohmann/json.hpp>
#include <string>

namespace dango::ctl {

// Server side (per RPC x provider x peer: requests, errors, p50/p99 of queue wait, handler and
// bulk stages, bytes), client side (calls, errors, p50/p99 latency, bytes), bulk transfers,
// pool queue lengths and stream utilisation. Quantiles are upper bounds of histogram buckets.
std::string stats_table(const nlohmann::json& stats);

}  // namespace dango::ctl
