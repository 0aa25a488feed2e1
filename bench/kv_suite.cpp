// The `kv` suite: the key/value service between two real processes, over each transport asked
// for (--transports: tcp, sm, ...), next to the same backend called directly (in a fresh process),
// for every registered backend.
//
// The server is this binary re-exec'd as helper "kv_bench_server" (kv_bench_server.cpp): an
// Engine with default options listening on the transport measured, and a kv::Provider with one
// database of the backend measured (a fresh store for each transport). The client is an Engine
// with default options here; every timed loop runs in one client ULT. The
// baseline ("direct") is the same operations on the same backend type made through the backend
// interface, without provider or RPC, in a fresh process of its own (helper "kv_direct"), as the
// server's store is: a process that has already run other backends reuses freed heap pages, and
// a page first touched costs a fault (about 40% of a 1,024-item put into `map`), so a direct run
// made here after other backends was up to 1.5x faster than the same run in a fresh process.
//
// Keys are 16 bytes; values 64 B .. 64 KiB (field "size"). Cases (ops/s, MB/s of values in
// "extra", ratio = RPC / direct; "cpu_us" is the CPU time the server process used per item
// during the case, every thread counted (its progress loop's polling between requests too),
// and "direct_cpu_us" that of the direct process: when the server is busy throughout, as in
// put_batch, how much of a gap is work the service adds):
//   put, get               single-key operations, one RPC each
//   put_batch, get_batch   batches of 1,024 keys (the packed forms), one RPC each; over RPC,
//                          put_batch keeps kWindow batches outstanding (put_packed_async), as
//                          a loader streaming data in would, so that the provider writes one
//                          while the next travels; the direct baseline makes the same backend
//                          calls one after the other (the provider runs them one at a time too:
//                          its engine has one execution stream)
//   list                   list_keyvals in pages of 1,024 over the single-put keys (ordered
//                          backends only)
//   get_vs_rpc             the single 64 B get's median latency (us) over the median of an empty
//                          RPC measured in the same run (baseline "empty_rpc")
//
// Environment: DANGO_BENCH_KV_BACKENDS=map,rocksdb measures only the backends named (default:
// every registered one); DANGO_BENCH_KV_SIZES=4096,65536 only the value sizes named, in bytes
// (get_vs_rpc then reads the first of them).

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

// The backend interface is internal to the kv component; the baseline calls it directly, as a
// provider does.
#include "../src/services/kv/backend.hpp"
#include "bench_server.hpp"
#include "dango/net/transport.hpp"
#include "dango/rpc/engine.hpp"
#include "dango/services/kv/client.hpp"
#include "suite.hpp"

namespace dango::bench {
namespace {

constexpr std::size_t kKeySize = 16;
constexpr std::size_t kBatch = 1024;
constexpr std::size_t kWindow = 3;  // put_batch over RPC: batches outstanding at once

struct Plan {
  std::vector<std::size_t> sizes;
  std::size_t single_max;    // single operations per size, at most
  std::size_t single_bytes;  // ... and about this many value bytes
  std::size_t batches_max;   // batches per size, at most
  std::size_t batch_bytes;   // ... and about this many value bytes
  std::size_t empty_rpcs;    // empty RPCs for the get_vs_rpc reference
};

Plan make_default_plan(bool quick) {
  if (quick) {
    return {.sizes = {64, 64 * kKiB},
            .single_max = 200,
            .single_bytes = 8 * kMiB,
            .batches_max = 3,
            .batch_bytes = 64 * kMiB,
            .empty_rpcs = 500};
  }
  return {.sizes = {64, 4 * kKiB, 64 * kKiB},
          .single_max = 5000,
          .single_bytes = 128 * kMiB,
          // Enough batches of small values that one scheduling hiccup of a loaded machine does
          // not decide their figure (20 batches of 64 B took ~10 ms); the bytes stay within
          // what every backend holds by default (lmdb's 1 GiB map, where a 4 KiB value takes
          // two pages).
          .batches_max = 50,
          .batch_bytes = 256 * kMiB,
          .empty_rpcs = 5000};
}

Plan make_plan(bool quick) {
  Plan plan = make_default_plan(quick);
  plan.sizes = sizes_from_env("DANGO_BENCH_KV_SIZES", std::move(plan.sizes));
  return plan;
}

// A 16-byte key: a tag for the case, the size's index, and a counter.
std::string key_of(char tag, std::size_t size_index, std::size_t i) {
  char buf[32];  // room for any counter; the key keeps its first kKeySize characters
  std::snprintf(buf, sizeof buf, "%c%c%014zx", tag, static_cast<char>('0' + size_index), i);
  return std::string(buf, kKeySize);
}

// The same operations, on a backend directly or through kv::Database.
struct Target {
  std::function<void(std::string_view key, std::string_view value)> put;
  std::function<std::size_t(std::string_view key)> get;
  std::function<void(std::span<const std::byte> keys, std::span<const std::size_t> key_sizes,
                     std::span<const std::byte> values, std::span<const std::size_t> value_sizes)>
      put_batch;
  // Waits until every put_batch issued so far is applied.
  std::function<void()> drain = [] {};
  std::function<std::size_t(std::span<const std::byte> keys, std::span<const std::size_t> key_sizes,
                            std::span<std::byte> out, std::span<std::size_t> out_sizes)>
      get_batch;
  // Lists every entry with `prefix` in pages of kBatch; returns how many.
  std::function<std::size_t(const std::string& prefix)> list_all;
  // CPU time used so far by the process holding the store (every thread: its engine, its
  // store's background threads), in seconds.
  std::function<double()> store_cpu_seconds = process_cpu_seconds;
};

// A failed backend call fails the benchmark, as it does through kv::Database.
void check(const kv::Status& status) {
  if (!status.ok()) throw kv::Error(status.code, status.message);
}

Target direct_target(kv::Backend& backend) {
  Target t;
  t.put = [&backend](std::string_view key, std::string_view value) {
    std::vector<bool> applied;
    check(backend.put({&key, 1}, {&value, 1}, kv::PutMode::Overwrite, applied));
  };
  t.get = [&backend](std::string_view key) {
    std::string value;
    auto copy = [&](std::size_t, std::string_view v) { value.assign(v); };
    check(backend.get({&key, 1}, false, copy));
    return value.size();
  };
  t.put_batch = [&backend](auto keys, auto key_sizes, auto values, auto value_sizes) {
    std::vector<std::string_view> k, v;
    std::size_t at = 0;
    for (auto s : key_sizes)
      k.emplace_back(reinterpret_cast<const char*>(keys.data()) + at, s), at += s;
    at = 0;
    for (auto s : value_sizes)
      v.emplace_back(reinterpret_cast<const char*>(values.data()) + at, s), at += s;
    std::vector<bool> applied;
    check(backend.put(k, v, kv::PutMode::Overwrite, applied));
  };
  t.get_batch = [&backend](auto keys, auto key_sizes, auto out, auto out_sizes) {
    std::vector<std::string_view> k;
    std::size_t at = 0;
    for (auto s : key_sizes)
      k.emplace_back(reinterpret_cast<const char*>(keys.data()) + at, s), at += s;
    std::size_t used = 0;
    auto copy = [&](std::size_t i, std::string_view v) {
      std::memcpy(out.data() + used, v.data(), v.size());
      out_sizes[i] = v.size();
      used += v.size();
    };
    check(backend.get(k, false, copy));
    return used;
  };
  t.list_all = [&backend](const std::string& prefix) {
    std::size_t n = 0;
    std::string last;
    bool first = true;
    for (;;) {
      std::vector<kv::KeyValue> page;
      auto visit = [&](std::string_view key, std::string_view value) {
        page.push_back({std::string(key), std::string(value)});
        return page.size() < kBatch;
      };
      kv::Status s = backend.list({.start = first ? prefix : last,
                                   .inclusive = first,
                                   .prefix = prefix,
                                   .with_values = true},
                                  visit);
      check(s);
      if (page.empty()) return n;
      n += page.size();
      last = page.back().key;
      first = false;
    }
  };
  return t;
}

Target rpc_target(kv::Database& db) {
  Target t;
  t.put = [&db](std::string_view key, std::string_view value) { db.put(key, value); };
  t.get = [&db](std::string_view key) { return db.get(key)->size(); };
  // The caller's buffers stay valid until drain(): every batch has its own keys, and the values
  // are one buffer for all.
  auto outstanding = std::make_shared<std::deque<kv::Pending<std::vector<bool>>>>();
  t.put_batch = [&db, outstanding](auto keys, auto key_sizes, auto values, auto value_sizes) {
    if (outstanding->size() == kWindow) {
      outstanding->front().wait();
      outstanding->pop_front();
    }
    outstanding->push_back(db.put_packed_async(keys, key_sizes, values, value_sizes));
  };
  t.drain = [outstanding] {
    for (; !outstanding->empty(); outstanding->pop_front()) outstanding->front().wait();
  };
  t.get_batch = [&db](auto keys, auto key_sizes, auto out, auto out_sizes) {
    return db.get_packed(keys, key_sizes, out, out_sizes);
  };
  t.list_all = [&db](const std::string& prefix) {
    std::size_t n = 0;
    kv::ListOptions options{.prefix = prefix, .max = kBatch};
    for (;;) {
      auto page = db.list_keyvals(options);
      if (page.empty()) return n;
      n += page.size();
      options.start = page.back().key;
      options.inclusive = false;
    }
  };
  return t;
}

// Figures of one case: operations (items), the time they took, single-op latencies.
struct Result {
  double ops_per_s = 0;
  double mb_per_s = 0;
  std::vector<double> latency_us;
  // CPU time of the store's process per item (Target::store_cpu_seconds), in microseconds.
  double store_cpu_us_per_op = 0;
};

// Times one case (from construction or restart()): its wall-clock time and the store's CPU
// time over it.
class CaseClock {
 public:
  explicit CaseClock(const Target& t) : target_(t), cpu_start_(t.store_cpu_seconds()) {}
  void restart() {
    cpu_start_ = target_.store_cpu_seconds();
    watch_.restart();
  }
  Result finish(std::size_t items, std::size_t value_size, std::vector<double> lat = {}) const {
    const double seconds = watch_.elapsed_s();
    const double cpu = target_.store_cpu_seconds() - cpu_start_;
    return {.ops_per_s = static_cast<double>(items) / seconds,
            .mb_per_s = static_cast<double>(items * value_size) / seconds / 1e6,
            .latency_us = std::move(lat),
            .store_cpu_us_per_op = cpu / static_cast<double>(items) * 1e6};
  }

 private:
  const Target& target_;
  double cpu_start_;
  Stopwatch watch_;
};

// Every case for one value size on one target, in a fixed order (puts before the reads).
std::map<std::string, Result> run_cases(const Target& t, std::size_t size_index, std::size_t size,
                                        const Plan& plan, bool ordered) {
  std::map<std::string, Result> out;
  const std::string value(size, 'v');
  const std::size_t singles =
      std::max<std::size_t>(50, std::min(plan.single_max, plan.single_bytes / size));
  std::vector<double> lat;
  CaseClock clock(t);
  for (std::size_t i = 0; i < singles; ++i) {
    const std::int64_t start = now_ns();
    t.put(key_of('p', size_index, i), value);
    lat.push_back(static_cast<double>(now_ns() - start) / 1e3);
  }
  out["put"] = clock.finish(singles, size, std::move(lat));
  lat = {};
  clock.restart();
  for (std::size_t i = 0; i < singles; ++i) {
    const std::int64_t start = now_ns();
    if (t.get(key_of('p', size_index, i)) != size) throw std::runtime_error("kv bench: get size");
    lat.push_back(static_cast<double>(now_ns() - start) / 1e3);
  }
  out["get"] = clock.finish(singles, size, std::move(lat));

  const std::size_t batches =
      std::max<std::size_t>(1, std::min(plan.batches_max, plan.batch_bytes / (size * kBatch)));
  std::vector<std::byte> values(size * kBatch, std::byte{'w'}), got(size * kBatch);
  const std::vector<std::size_t> key_sizes(kBatch, kKeySize), value_sizes(kBatch, size);
  std::vector<std::size_t> got_sizes(kBatch);
  std::vector<std::vector<std::byte>> keys(batches);
  for (std::size_t b = 0; b < batches; ++b) {
    for (std::size_t j = 0; j < kBatch; ++j) {
      const std::string k = key_of('b', size_index, b * kBatch + j);
      const auto* p = reinterpret_cast<const std::byte*>(k.data());
      keys[b].insert(keys[b].end(), p, p + k.size());
    }
  }
  clock.restart();
  for (std::size_t b = 0; b < batches; ++b) t.put_batch(keys[b], key_sizes, values, value_sizes);
  t.drain();
  out["put_batch"] = clock.finish(batches * kBatch, size);
  clock.restart();
  for (std::size_t b = 0; b < batches; ++b) {
    if (t.get_batch(keys[b], key_sizes, got, got_sizes) != got.size()) {
      throw std::runtime_error("kv bench: get_batch size");
    }
  }
  out["get_batch"] = clock.finish(batches * kBatch, size);
  if (ordered) {
    clock.restart();
    const std::size_t listed = t.list_all(key_of('p', size_index, 0).substr(0, 2));
    if (listed != singles) throw std::runtime_error("kv bench: listed " + std::to_string(listed));
    out["list"] = clock.finish(listed, size);
  }
  return out;
}

// A temporary directory for the stores, removed on scope exit.
struct TempDir {
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "dango-kv-bench-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("kv bench: mkdtemp failed");
    path = templ;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  std::filesystem::path path;
};

using Cases = std::vector<std::map<std::string, Result>>;

// Every case on `backend` called directly in this process.
Cases run_direct(const kv::BackendDescription& backend, const std::filesystem::path& dir,
                 const Plan& plan) {
  Cases direct;
  nlohmann::json config = nlohmann::json::object();
  if (backend.persistent) config["path"] = (dir / "direct").string();
  auto store = kv::make_backend(backend.name, config, {.name = "bench", .config_path = "config"});
  const Target t = direct_target(*store);
  for (std::size_t s = 0; s < plan.sizes.size(); ++s) {
    direct.push_back(run_cases(t, s, plan.sizes[s], plan, backend.ordered));
  }
  return direct;
}

nlohmann::json cases_to_json(const Cases& cases) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& by_name : cases) {
    nlohmann::json size = nlohmann::json::object();
    for (const auto& [name, r] : by_name) {
      size[name] = {{"ops_per_s", r.ops_per_s},
                    {"mb_per_s", r.mb_per_s},
                    {"latency_us", r.latency_us},
                    {"store_cpu_us_per_op", r.store_cpu_us_per_op}};
    }
    out.push_back(std::move(size));
  }
  return out;
}

Cases cases_from_json(const nlohmann::json& json) {
  Cases cases;
  for (const auto& size : json) {
    auto& by_name = cases.emplace_back();
    for (const auto& [name, r] : size.items()) {
      by_name[name] = {.ops_per_s = r.at("ops_per_s").get<double>(),
                       .mb_per_s = r.at("mb_per_s").get<double>(),
                       .latency_us = r.at("latency_us").get<std::vector<double>>(),
                       .store_cpu_us_per_op = r.at("store_cpu_us_per_op").get<double>()};
    }
  }
  return cases;
}

constexpr unsigned kDirectWatchdogSeconds = 1800;

// Helper "kv_direct" <backend> <dir> <quick|full>: run_direct() in a fresh process; prints the
// cases as one JSON line.
int kv_direct(const std::vector<std::string>& args) {
  signal(SIGALRM, SIG_DFL);
  alarm(kDirectWatchdogSeconds);
  try {
    if (args.size() != 3) throw std::runtime_error("usage: kv_direct <backend> <dir> <quick|full>");
    for (const auto& backend : kv::available_backends()) {
      if (backend.name != args[0]) continue;
      const Cases cases = run_direct(backend, args[1], make_plan(args[2] == "quick"));
      std::printf("%s\n", cases_to_json(cases).dump().c_str());
      std::fflush(stdout);
      return 0;
    }
    throw std::runtime_error("no backend " + args[0]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kv_direct: %s\n", e.what());
    return 1;
  }
}

// run_direct() for `backend` in a fresh process (helper "kv_direct").
Cases run_direct_in_fresh_process(const kv::BackendDescription& backend,
                                  const std::filesystem::path& dir, bool quick) {
  HelperProcess helper("kv_direct", {backend.name, dir.string(), quick ? "quick" : "full"});
  Cases cases = cases_from_json(nlohmann::json::parse(helper.read_line(std::chrono::minutes(20))));
  helper.wait_exit(std::chrono::seconds(30));
  return cases;
}

// Every case through a kv_bench_server listening on `listen_address`, whose store (if
// persistent) lives in `dir`; `empty_us` gets the empty-RPC latencies.
Cases run_remote(const kv::BackendDescription& backend, const std::string& transport,
                 const std::string& listen_address, const std::filesystem::path& dir,
                 const Plan& plan, std::vector<double>& empty_us) {
  rpc::Engine engine{rpc::EngineOptions{.address = transport}};
  HelperProcess server("kv_bench_server", {backend.name, dir.string(), listen_address});
  const rpc::Endpoint endpoint = engine.lookup(server.read_line());
  Cases remote = in_ult<Cases>(engine, [&] {
    auto empty = engine.rpc<void()>("bench_empty").on(endpoint);
    for (std::size_t i = 0; i < plan.empty_rpcs / 10; ++i) empty();
    for (std::size_t i = 0; i < plan.empty_rpcs; ++i) {
      const std::int64_t start = now_ns();
      empty();
      empty_us.push_back(static_cast<double>(now_ns() - start) / 1e3);
    }
    kv::Database db = kv::Client{engine}.open(endpoint, 1, "bench");
    Target t = rpc_target(db);
    auto server_cpu = engine.rpc<double()>("bench_cpu").on(endpoint);
    t.store_cpu_seconds = [&server_cpu] { return server_cpu(); };
    Cases cases;
    for (std::size_t s = 0; s < plan.sizes.size(); ++s) {
      cases.push_back(run_cases(t, s, plan.sizes[s], plan, backend.ordered));
    }
    return cases;
  });
  engine.rpc<void()>("bench_shutdown").on(endpoint).timeout(std::chrono::seconds(10))();
  server.wait_exit(std::chrono::seconds(30));
  return remote;
}

void report(const kv::BackendDescription& backend, const std::string& transport, const Plan& plan,
            const Cases& direct, const Cases& remote, const std::vector<double>& empty_us,
            Reporter& reporter) {
  for (std::size_t s = 0; s < plan.sizes.size(); ++s) {
    for (const auto& [name, result] : remote[s]) {
      char mb[32], cpu[32], direct_cpu[32];
      std::snprintf(mb, sizeof mb, "%.1f", result.mb_per_s);
      std::snprintf(cpu, sizeof cpu, "%.3g", result.store_cpu_us_per_op);
      std::snprintf(direct_cpu, sizeof direct_cpu, "%.3g", direct[s].at(name).store_cpu_us_per_op);
      reporter.add({.transport = transport,
                    .case_name = name,
                    .size = plan.sizes[s],
                    .value = result.ops_per_s,
                    .unit = "ops/s",
                    .baseline = "direct",
                    .baseline_value = direct[s].at(name).ops_per_s,
                    .extra = {{"backend", backend.name},
                              {"MB/s", mb},
                              {"cpu_us", cpu},
                              {"direct_cpu_us", direct_cpu}}});
    }
  }
  reporter.add({.transport = transport,
                .case_name = "get_vs_rpc",
                .size = plan.sizes[0],
                .value = median(remote[0].at("get").latency_us),
                .unit = "us",
                .baseline = "empty_rpc",
                .baseline_value = median(empty_us),
                .extra = {{"backend", backend.name}}});
}

// The transports of `options` this suite can measure, with the address a server listens on.
std::vector<std::pair<std::string, std::string>> measured_transports(const Options& options) {
  std::vector<std::pair<std::string, std::string>> out;
  const std::vector<std::string> registered = net::registered_transports();
  for (const std::string& transport : options.transports) {
    const auto address = server_address(transport);
    if (!address ||
        std::find(registered.begin(), registered.end(), transport) == registered.end()) {
      std::cerr << "kv suite: skipping transport \"" << transport
                << "\" (not supported by the engine or by this suite)\n";
      continue;
    }
    out.emplace_back(transport, *address);
  }
  return out;
}

// Whether `backend` is among those DANGO_BENCH_KV_BACKENDS names (all when it is unset).
bool selected(const std::string& backend) {
  const char* list = std::getenv("DANGO_BENCH_KV_BACKENDS");
  if (list == nullptr || *list == '\0') return true;
  const std::string names = std::string(",") + list + ",";
  return names.find("," + backend + ",") != std::string::npos;
}

void run_kv_suite(const Options& options, Reporter& reporter) {
  const Plan plan = make_plan(options.quick);
  const auto transports = measured_transports(options);
  if (transports.empty()) return;
  for (const auto& backend : kv::available_backends()) {
    if (!selected(backend.name)) continue;
    TempDir dir;
    const Cases direct = run_direct_in_fresh_process(backend, dir.path, options.quick);
    for (const auto& [transport, address] : transports) {
      std::vector<double> empty_us;
      const std::filesystem::path store_dir = dir.path / transport;
      std::filesystem::create_directories(store_dir);
      const Cases remote = run_remote(backend, transport, address, store_dir, plan, empty_us);
      report(backend, transport, plan, direct, remote, empty_us, reporter);
    }
    reporter.flush(std::cout);
  }
}

}  // namespace

DANGO_REGISTER_BENCH_SUITE(kv, run_kv_suite);
DANGO_REGISTER_BENCH_HELPER(kv_direct, kv_direct);

}  // namespace dango::bench
