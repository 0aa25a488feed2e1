// The `blob` suite: write+persist and read of 4 KiB .. 64 MiB regions on every example target
// configuration (from the registry: each type, and variants such as file.directory, whose data
// files are sized to hold the largest region), served by a blob provider in another process
// (helper "blob_bench_server"), each next to a baseline measured in the same run:
//
//   write_persist  GiB/s of create_write_persist (size / median time of one call; the region is
//                  erased after each call, untimed). Baselines: file -> pwrite+fdatasync of the
//                  same size on the same file system (a file in the same folder); memory -> the
//                  RPC layer's raw bulk pull of the same size on the same transport (bench_pull).
//   read           GiB/s of read into the client's memory. Baselines: file -> pread of the same
//                  size from a file of the same folder (page cache, as the target); memory -> the
//                  raw bulk push (bench_push).
//   memcpy         informational, target memory: the copy a same-node transport could reach.
//
// The client exposes one 64 MiB buffer (touched first) once and uses the Bulk overloads, as an
// application that reuses its buffers would. Each record carries "target" (the example's name).
// Files go to a fresh folder under $TMPDIR (default /tmp), removed at the end.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "baselines.hpp"
#include "bench_server.hpp"
#include "dango/rpc/engine.hpp"
#include "dango/services/blob/client.hpp"
#include "suite.hpp"

namespace dango::bench {
namespace {

constexpr std::size_t kSizes[] = {4 * kKiB, 64 * kKiB, 1 * kMiB, 16 * kMiB, 64 * kMiB};
constexpr std::size_t kMaxSize = 64 * kMiB;

// Timed calls per size: >= 256 MiB moved (32 MiB quick), at least 10 (3), at most 300 (30).
std::size_t repetitions(std::size_t size, bool quick) {
  const std::size_t bytes = quick ? 32 * kMiB : 256 * kMiB;
  return std::clamp<std::size_t>(bytes / size, quick ? 3 : 10, quick ? 30 : 300);
}

// Median seconds of `call` over repetitions(size) runs after a warm-up of a tenth (>= 1).
template <class Call>
double median_seconds(std::size_t size, bool quick, Call call) {
  const std::size_t timed = repetitions(size, quick);
  for (std::size_t i = 0; i < timed / 10 + 1; ++i) call();
  std::vector<double> seconds;
  for (std::size_t i = 0; i < timed; ++i) {
    const Stopwatch watch;
    call();
    seconds.push_back(watch.elapsed_s());
  }
  return median(std::move(seconds));
}

// A private folder for the files of one run, removed on scope exit.
struct ScratchDir {
  ScratchDir() {
    std::string templ =
        (std::filesystem::temp_directory_path() / "dango-bench-blob-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = templ;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  std::filesystem::path path;
};

// The file-system baselines on a file of `dir`: GiB/s of pwrite+fdatasync and of pread.
std::pair<double, double> file_baselines(const std::filesystem::path& dir, const std::byte* data,
                                         std::size_t size, bool quick) {
  const std::string path = (dir / "baseline").string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + path);
  auto write_sync = [&] {
    if (::pwrite(fd, data, size, 0) != static_cast<ssize_t>(size) || ::fdatasync(fd) != 0) {
      throw std::runtime_error("pwrite+fdatasync failed on " + path);
    }
  };
  std::vector<std::byte> out(size);
  auto read = [&] {
    if (::pread(fd, out.data(), size, 0) != static_cast<ssize_t>(size)) {
      throw std::runtime_error("pread failed on " + path);
    }
  };
  const double write_bw =
      gib_per_s(static_cast<double>(size), median_seconds(size, quick, write_sync));
  const double read_bw = gib_per_s(static_cast<double>(size), median_seconds(size, quick, read));
  ::close(fd);
  std::filesystem::remove(path);
  return {write_bw, read_bw};
}

// GiB/s of the rpc suite's raw bulk RPC `name` (bench_pull / bench_push) of `size` bytes.
double raw_bulk(rpc::Engine& engine, const BenchServer& server, const char* name,
                const rpc::Bulk& memory, std::size_t size, bool quick) {
  const auto transfer = engine.rpc<void(rpc::Bulk, std::uint64_t)>(name).on(server.endpoint());
  return gib_per_s(static_cast<double>(size),
                   median_seconds(size, quick, [&] { transfer(memory, size); }));
}

void run_target(const std::string& example, const std::string& transport,
                const std::string& listen_address, const Options& options, Reporter& reporter,
                rpc::Engine& engine, const rpc::Bulk& memory, const std::byte* bytes) {
  ScratchDir scratch;
  const blob::TargetConfig target_config = blob::example_target(example, scratch.path.string());
  const std::string& type = target_config.type;
  nlohmann::json config = target_config.config;
  if (config.contains("capacity")) config["capacity"] = static_cast<uint64_t>(4 * kMaxSize);
  if (config.contains("file_size")) config["file_size"] = static_cast<uint64_t>(kMaxSize);
  config["name"] = "bench";
  config["type"] = type;
  HelperProcess server("blob_bench_server", {listen_address, config.dump()});
  const rpc::Endpoint endpoint = engine.lookup(server.read_line());
  const blob::Target target = blob::Client(engine).open(endpoint.address(), 1, "bench");
  std::unique_ptr<BenchServer> raw;
  if (type != "file") raw = std::make_unique<BenchServer>(engine, listen_address, kMaxSize);
  for (std::size_t size : kSizes) {
    double write_base = 0, read_base = 0;
    std::string write_name, read_name;
    if (raw) {
      write_base = raw_bulk(engine, *raw, "bench_pull", memory, size, options.quick);
      read_base = raw_bulk(engine, *raw, "bench_push", memory, size, options.quick);
      write_name = "rpc_bulk_pull";
      read_name = "rpc_bulk_push";
    } else {
      std::tie(write_base, read_base) = file_baselines(scratch.path, bytes, size, options.quick);
      write_name = "pwrite_fdatasync";
      read_name = "pread";
    }
    const double write =
        gib_per_s(static_cast<double>(size), median_seconds(size, options.quick, [&] {
                    target.erase(target.create_write_persist(memory, 0, size));
                  }));
    const blob::RegionId region = target.create_write_persist(memory, 0, size);
    const double read = gib_per_s(
        static_cast<double>(size),
        median_seconds(size, options.quick, [&] { target.read(region, 0, memory, 0, size); }));
    target.erase(region);
    reporter.add({.transport = transport,
                  .case_name = "write_persist",
                  .size = size,
                  .value = write,
                  .unit = "GiB/s",
                  .baseline = write_name,
                  .baseline_value = write_base,
                  .extra = {{"target", example}}});
    reporter.add({.transport = transport,
                  .case_name = "read",
                  .size = size,
                  .value = read,
                  .unit = "GiB/s",
                  .baseline = read_name,
                  .baseline_value = read_base,
                  .extra = {{"target", example}}});
  }
  engine.rpc<void()>("blob_bench_shutdown").on(endpoint).timeout(std::chrono::seconds(10))();
  server.wait_exit();
}

void run_blob_suite(const Options& options, Reporter& reporter) {
  const std::vector<std::string> registered = net::registered_transports();
  for (const std::string& transport : options.transports) {
    const auto address = server_address(transport);
    if (!address ||
        std::find(registered.begin(), registered.end(), transport) == registered.end()) {
      std::cerr << "blob suite: skipping transport \"" << transport
                << "\" (not supported by the engine or by this suite)\n";
      continue;
    }
    rpc::Engine engine{rpc::EngineOptions{.address = transport}};
    auto buffer = std::make_unique_for_overwrite<std::byte[]>(kMaxSize);
    std::memset(buffer.get(), 0x5a, kMaxSize);  // touched before timing
    const rpc::Bulk memory =
        engine.expose(std::span<std::byte>(buffer.get(), kMaxSize), rpc::Access::kReadWrite);
    for (const std::string& example : blob::example_target_names()) {
      run_target(example, transport, *address, options, reporter, engine, memory, buffer.get());
    }
  }
  for (std::size_t size : kSizes) {
    reporter.add({.case_name = "memcpy",
                  .size = size,
                  .value = memcpy_bandwidth(size, {.quick = options.quick}),
                  .unit = "GiB/s",
                  .extra = {{"target", "memory"}}});
  }
}

}  // namespace

DANGO_REGISTER_BENCH_SUITE(blob, run_blob_suite);

}  // namespace dango::bench
