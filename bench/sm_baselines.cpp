// Same-node baselines (see sm_baselines.hpp) and the `sm_raw` suite that prints them.

#include "sm_baselines.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "dango/net/transport.hpp"
#include "suite.hpp"

namespace dango::bench {
namespace {

constexpr unsigned kWatchdogSeconds = 60;
constexpr std::uint64_t kQuit = ~std::uint64_t{0};

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::runtime_error("sm baseline: " + what + ": " + std::strerror(errno));
}

// Two cache lines in a shared mapping: `ping` written by the parent, `pong` by the helper.
struct alignas(64) PingPongLines {
  alignas(64) std::atomic<std::uint64_t> ping;
  alignas(64) std::atomic<std::uint64_t> pong;
};

PingPongLines* map_lines(int fd) {
  void* p = mmap(nullptr, sizeof(PingPongLines), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) throw_errno("mmap of the ping-pong lines");
  return static_cast<PingPongLines*>(p);
}

// Helper: args = {fd}; answers every ping with the same value until kQuit.
int shm_pingpong_server(const std::vector<std::string>& args) {
  signal(SIGALRM, SIG_DFL);
  alarm(kWatchdogSeconds);
  if (args.size() != 1) return 2;
  PingPongLines* lines = map_lines(std::stoi(args[0]));
  std::printf("ready\n");
  std::fflush(stdout);
  std::uint64_t last = 0;
  for (;;) {
    std::uint64_t value;
    while ((value = lines->ping.load(std::memory_order_acquire)) == last) {
    }
    if (value == kQuit) return 0;
    lines->pong.store(value, std::memory_order_release);
    last = value;
  }
}
DANGO_REGISTER_BENCH_HELPER(shm_pingpong_server, shm_pingpong_server);

// Helper: a touched buffer of args[0] bytes; prints its address, then waits to be killed.
int cma_source(const std::vector<std::string>& args) {
  signal(SIGALRM, SIG_DFL);
  alarm(kWatchdogSeconds);
  if (args.size() != 1) return 2;
  const std::size_t size = std::stoull(args[0]);
  auto buffer = std::make_unique_for_overwrite<std::byte[]>(size);
  std::memset(buffer.get(), 0x5a, size);
  std::printf("%llu\n",
              static_cast<unsigned long long>(reinterpret_cast<std::uintptr_t>(buffer.get())));
  std::fflush(stdout);
  for (;;) pause();
}
DANGO_REGISTER_BENCH_HELPER(cma_source, cma_source);

// Helper: an sm transport echoing every message, both... until the parent disconnects.
int sm_echo_server(const std::vector<std::string>& /*args*/) {
  signal(SIGALRM, SIG_DFL);
  alarm(kWatchdogSeconds);
  auto transport = net::make_transport("sm://");
  struct Echo : net::MessageHandler {
    explicit Echo(net::Transport& t) : transport(t) {}
    void on_message(const net::PeerRef& from, std::span<const std::byte> message) override {
      std::span<const std::byte> parts[] = {message};
      transport.send(from, parts);
    }
    void on_peer_lost(const net::PeerRef&) override { done = true; }
    net::Transport& transport;
    bool done = false;
  } echo(*transport);
  transport->set_handler(&echo);
  std::printf("%s\n", transport->address().c_str());
  std::fflush(stdout);
  while (!echo.done) transport->progress(std::chrono::microseconds(0));
  return 0;
}
DANGO_REGISTER_BENCH_HELPER(sm_echo_server, sm_echo_server);

}  // namespace

PingPongResult shm_pingpong(std::size_t iterations) {
  int fd = memfd_create("dango-bench-shm-pingpong", 0);  // inherited by the helper
  if (fd < 0) throw_errno("memfd_create");
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  if (ftruncate(fd, sizeof(PingPongLines)) != 0) throw_errno("ftruncate");
  PingPongLines* lines = map_lines(fd);
  struct Unmapper {
    PingPongLines* lines;
    ~Unmapper() { munmap(lines, sizeof(PingPongLines)); }
  } unmapper{lines};
  HelperProcess server("shm_pingpong_server", {std::to_string(fd)});
  if (server.read_line() != "ready") throw std::runtime_error("shm_pingpong: helper not ready");
  std::uint64_t seq = 0;
  auto round_trip = [&] {
    ++seq;
    lines->ping.store(seq, std::memory_order_release);
    while (lines->pong.load(std::memory_order_acquire) != seq) {
    }
  };
  PingPongResult result = time_round_trips(pingpong_warmup(iterations), iterations, round_trip);
  lines->ping.store(kQuit, std::memory_order_release);
  const auto code = server.wait_exit(std::chrono::seconds(5));
  if (!code || *code != 0) throw std::runtime_error("shm_pingpong: helper did not exit cleanly");
  return result;
}

double cma_gib_per_s(std::size_t size, Effort effort) {
  if (size == 0) throw std::invalid_argument("cma: size must be >= 1");
  HelperProcess source("cma_source", {std::to_string(size)});
  const auto remote_address = static_cast<std::uintptr_t>(std::stoull(source.read_line()));
  auto local = std::make_unique_for_overwrite<std::byte[]>(size);
  std::memset(local.get(), 0, size);
  iovec local_iov{local.get(), size};
  iovec remote_iov{reinterpret_cast<void*>(remote_address), size};
  auto read_once = [&] {
    ssize_t n = process_vm_readv(source.pid(), &local_iov, 1, &remote_iov, 1, 0);
    if (n != static_cast<ssize_t>(size)) throw_errno("process_vm_readv");
  };
  read_once();  // warm-up
  const std::size_t budget = effort.quick ? 32 * kMiB : 256 * kMiB;
  const std::size_t minimum = effort.quick ? 5 : 20;
  const std::size_t repetitions = std::max(minimum, budget / size);
  std::vector<double> seconds;
  seconds.reserve(repetitions);
  for (std::size_t i = 0; i < repetitions; ++i) {
    const Stopwatch watch;
    read_once();
    seconds.push_back(watch.elapsed_s());
  }
  return gib_per_s(static_cast<double>(size), median(std::move(seconds)));
}

PingPongResult sm_transport_pingpong(std::size_t msg_size, std::size_t iterations) {
  if (msg_size == 0) throw std::invalid_argument("sm_transport_pingpong: msg_size must be >= 1");
  HelperProcess server("sm_echo_server");
  const std::string address = server.read_line();
  auto transport = net::make_transport("sm");
  struct Counter : net::MessageHandler {
    void on_message(const net::PeerRef&, std::span<const std::byte>) override { ++received; }
    void on_peer_lost(const net::PeerRef&) override { lost = true; }
    std::size_t received = 0;
    bool lost = false;
  } counter;
  transport->set_handler(&counter);
  auto peer = transport->lookup(address);
  std::vector<std::byte> message(msg_size, std::byte{0x42});
  std::span<const std::byte> parts[] = {message};
  auto round_trip = [&] {
    const std::size_t expected = counter.received + 1;
    if (!transport->send(peer, parts).ok()) throw std::runtime_error("sm_transport_pingpong: send");
    while (counter.received < expected) {
      transport->progress(std::chrono::microseconds(0));
      if (counter.lost) throw std::runtime_error("sm_transport_pingpong: helper lost");
    }
  };
  PingPongResult result = time_round_trips(pingpong_warmup(iterations), iterations, round_trip);
  transport->close();
  const auto code = server.wait_exit(std::chrono::seconds(5));
  if (!code || *code != 0) {
    throw std::runtime_error("sm_transport_pingpong: helper did not exit cleanly");
  }
  return result;
}

namespace {

// The `sm_raw` suite: the same-node floors next to the sm transport's own round trip.
void run_sm_raw(const Options& options, Reporter& reporter) {
  const Effort effort{.quick = options.quick};
  const std::size_t iterations = pingpong_iterations(effort);
  const PingPongResult shm = shm_pingpong(iterations);
  reporter.add({.transport = "sm",
                .case_name = "shm_pingpong_median",
                .value = shm.median_us(),
                .unit = "us"});
  const PingPongResult sm = sm_transport_pingpong(kPingPongMessageSize, iterations);
  reporter.add({.transport = "sm",
                .case_name = "transport_roundtrip_median",
                .size = kPingPongMessageSize,
                .value = sm.median_us(),
                .unit = "us",
                .baseline = "shm_pingpong",
                .baseline_value = shm.median_us()});
  reporter.add({.transport = "sm",
                .case_name = "transport_roundtrip_p99",
                .size = kPingPongMessageSize,
                .value = sm.p99_us(),
                .unit = "us",
                .baseline = "shm_pingpong",
                .baseline_value = shm.p99_us()});
  for (std::size_t size : {64 * kKiB, 1 * kMiB, 16 * kMiB}) {
    const double memcpy = memcpy_bandwidth(size, effort);
    reporter.add({.transport = "sm",
                  .case_name = "cma",
                  .size = size,
                  .value = cma_gib_per_s(size, effort),
                  .unit = "GiB/s",
                  .baseline = "memcpy_bandwidth",
                  .baseline_value = memcpy});
  }
}

}  // namespace

DANGO_REGISTER_BENCH_SUITE(sm_raw, run_sm_raw);

}  // namespace dango::bench
