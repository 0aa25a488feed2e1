// The `bulk` suite: one-sided transfers between two real processes, next to a raw TCP stream of
// the same size measured in the same run.
//
// The client exposes one buffer (the largest size, touched first) once and reuses it; per
// transfer it sends the Bulk handle in an RPC, and the SERVER (helper "rpc_bench_server", an
// Engine with default options, see rpc_bench_server.cpp) pulls from or pushes to it before
// replying. The time is that of the whole RPC, as a client sees it.
//
//   pull, push         GiB/s for 4 KiB .. 64 MiB: size / median time of one RPC.
//                      Baseline: tcp_stream of the same size (the faster of its two modes);
//                      for sm, cma (one process_vm_readv of the same size).
//   pull_shared, push_shared (sm only)  the same on memory from Engine::allocate_exposed,
//                      which the server maps once: baseline memcpy of the same size.
//   memcpy_bandwidth   informational (no baseline): the copy a same-node transport could reach.
//
// Environment: DANGO_BENCH_BULK_SIZES=1048576 measures only the transfer sizes named, in bytes
// (at most 64 MiB).

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "baselines.hpp"
#include "sm_baselines.hpp"
#include "dango/net/transport.hpp"
#include "dango/rpc/engine.hpp"
#include "bench_server.hpp"
#include "suite.hpp"

namespace dango::bench {
namespace {

// The client's buffer: the largest transfer.
constexpr std::size_t kMaxSize = 64 * kMiB;

// The transfer sizes: a small message, an eager/rendezvous boundary, bulk sizes in cache and
// well past it; or those DANGO_BENCH_BULK_SIZES names.
std::vector<std::size_t> transfer_sizes() {
  auto sizes = sizes_from_env("DANGO_BENCH_BULK_SIZES",
                              {4 * kKiB, 64 * kKiB, 1 * kMiB, 16 * kMiB, kMaxSize});
  for (std::size_t size : sizes) {
    if (size > kMaxSize) {
      throw std::runtime_error("DANGO_BENCH_BULK_SIZES: " + std::to_string(size) +
                               " bytes is more than the suite's 64 MiB buffer");
    }
  }
  return sizes;
}

// RPC names served by rpc_bench_server.cpp.
constexpr const char* kPullRpc = "bench_pull";
constexpr const char* kPushRpc = "bench_push";

// Timed RPCs per size and direction: as tcp_stream, >= 256 MiB moved or >= 20 repetitions
// (32 MiB / 5 when quick), after a tenth as warm-up.
std::size_t repetitions(std::size_t size, bool quick) {
  const std::size_t bytes = quick ? 32 * kMiB : 256 * kMiB;
  return std::max<std::size_t>(quick ? 5 : 20, bytes / size);
}

// GiB/s of `size`-byte transfers by RPC `name` (bench_pull or bench_push) on `memory`, timed per
// RPC in one client ULT.
double transfer_gib_per_s(rpc::Engine& engine, const rpc::Endpoint& server, const char* name,
                          const rpc::Bulk& memory, std::size_t size, bool quick) {
  const auto transfer = engine.rpc<void(rpc::Bulk, std::uint64_t)>(name).on(server);
  const std::size_t timed = repetitions(size, quick);
  std::vector<double> seconds;
  seconds.reserve(timed);
  engine.rpc_pool()
      .spawn([&] {
        for (std::size_t i = 0; i < timed / 10 + 1; ++i) transfer(memory, size);
        for (std::size_t i = 0; i < timed; ++i) {
          const std::int64_t start = now_ns();
          transfer(memory, size);
          seconds.push_back(static_cast<double>(now_ns() - start) / 1e9);
        }
      })
      .join();
  return gib_per_s(static_cast<double>(size), median(std::move(seconds)));
}

void run_for_transport(const std::string& transport, const std::string& listen_address,
                       const std::vector<std::size_t>& sizes, const Options& options,
                       Reporter& reporter) {
  const Effort effort{.quick = options.quick};
  rpc::Engine engine{rpc::EngineOptions{.address = transport}};  // default options: a client
  auto buffer = std::make_unique_for_overwrite<std::byte[]>(kMaxSize);
  std::memset(buffer.get(), 0xa5, kMaxSize);  // touched before timing
  const rpc::Bulk memory =
      engine.expose(std::span<std::byte>(buffer.get(), kMaxSize), rpc::Access::kReadWrite);
  // For sm, also transfers on memory from Engine::allocate_exposed: a segment the server maps
  // once, so that a transfer is a memcpy (cases pull_shared / push_shared, baseline memcpy).
  const bool same_node = transport == "sm";
  rpc::ExposedMemory shared;
  if (same_node) {
    shared = engine.allocate_exposed(kMaxSize);
    std::memset(shared.data().data(), 0xa5, kMaxSize);
  }
  struct Row {
    std::string baseline;
    double baseline_value = 0;
    std::string mode;  // which tcp_stream mode was faster ("" for other baselines)
    double pull = 0, push = 0, pull_shared = 0, push_shared = 0, memcpy = 0;
  };
  std::vector<Row> rows;
  {
    const BenchServer server(engine, listen_address, kMaxSize);
    for (std::size_t size : sizes) {
      // Each baseline right before its RPCs, so that a drift of the machine hits both alike.
      // Meanwhile the idle server sleeps (past its polling window) and the client's progress
      // loop does not run (this thread is not waiting): neither steals CPU.
      Row row;
      if (same_node) {
        row.baseline = "cma";
        row.baseline_value = cma_gib_per_s(size, effort);
      } else {
        const StreamResult stream = tcp_stream(size, effort);
        row.baseline = "tcp_stream";
        row.baseline_value = stream.gib_per_s;
        row.mode = stream.polling_gib_per_s >= stream.blocking_gib_per_s ? "poll" : "blocking";
      }
      const auto& ep = server.endpoint();
      row.pull = transfer_gib_per_s(engine, ep, kPullRpc, memory, size, options.quick);
      row.push = transfer_gib_per_s(engine, ep, kPushRpc, memory, size, options.quick);
      if (same_node) {
        row.memcpy = memcpy_bandwidth(size, effort);
        row.pull_shared = transfer_gib_per_s(engine, ep, kPullRpc, shared.bulk(), size, options.quick);
        row.push_shared = transfer_gib_per_s(engine, ep, kPushRpc, shared.bulk(), size, options.quick);
      }
      rows.push_back(row);
    }
  }
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    const Row& row = rows[i];
    std::map<std::string, std::string> extra;
    if (!row.mode.empty()) extra["baseline_mode"] = row.mode;
    for (const auto& [name, value] : {std::pair{"pull", row.pull}, std::pair{"push", row.push}}) {
      reporter.add({.transport = transport,
                    .case_name = name,
                    .size = sizes[i],
                    .value = value,
                    .unit = "GiB/s",
                    .baseline = row.baseline,
                    .baseline_value = row.baseline_value,
                    .extra = extra});
    }
    if (!same_node) continue;
    for (const auto& [name, value] :
         {std::pair{"pull_shared", row.pull_shared}, std::pair{"push_shared", row.push_shared}}) {
      reporter.add({.transport = transport,
                    .case_name = name,
                    .size = sizes[i],
                    .value = value,
                    .unit = "GiB/s",
                    .baseline = "memcpy",
                    .baseline_value = row.memcpy});
    }
  }
}

void run_bulk_suite(const Options& options, Reporter& reporter) {
  const std::vector<std::size_t> sizes = transfer_sizes();
  const std::vector<std::string> registered = net::registered_transports();
  for (const std::string& transport : options.transports) {
    const auto address = server_address(transport);
    if (!address ||
        std::find(registered.begin(), registered.end(), transport) == registered.end()) {
      std::cerr << "bulk suite: skipping transport \"" << transport
                << "\" (not supported by the engine or by this suite)\n";
      continue;
    }
    run_for_transport(transport, *address, sizes, options, reporter);
  }
  for (std::size_t size : sizes) {
    reporter.add({.case_name = "memcpy_bandwidth",
                  .size = size,
                  .value = memcpy_bandwidth(size, {.quick = options.quick}),
                  .unit = "GiB/s"});
  }
}

}  // namespace

DANGO_REGISTER_BENCH_SUITE(bulk, run_bulk_suite);

}  // namespace dango::bench
