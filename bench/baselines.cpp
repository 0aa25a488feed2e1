#include "baselines.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/fiber/all.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "../src/common/unique_fd.hpp"
#include "suite.hpp"

namespace dango::bench {

double PingPongResult::median_us() const { return median(latency_us); }
double PingPongResult::p99_us() const { return p99(latency_us); }

namespace {

// The helper server kills itself after this long, whatever happens to its parent.
constexpr unsigned kWatchdogSeconds = 60;

// What the client asks of the helper server, sent once right after connecting.
enum class Pattern : std::uint8_t {
  kEcho = 1,  // read msg_size bytes, send them back; repeat
  kSink = 2,  // read msg_size bytes, send a 1-byte ack; repeat
};
constexpr std::uint32_t kHelloMagic = 0x44414e47;  // "DANG"
struct Hello {
  std::uint32_t magic = kHelloMagic;
  Pattern pattern = Pattern::kEcho;
  IoMode mode = IoMode::kBlocking;
  std::uint16_t reserved = 0;
  std::uint64_t msg_size = 0;
};

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::runtime_error("tcp baseline: " + what + ": " + std::strerror(errno));
}

using Fd = UniqueFd;

Fd tcp_socket() {
  Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) throw_errno("socket");
  return fd;
}

void set_nodelay(int fd) {
  const int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) throw_errno("TCP_NODELAY");
}

// Receives exactly n bytes. Returns false on end of stream before the first byte (the peer
// closed between messages); throws on an error or on end of stream inside a message.
bool recv_exact(int fd, std::byte* data, std::size_t n, IoMode mode) {
  const int flags = mode == IoMode::kPolling ? MSG_DONTWAIT : 0;
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = recv(fd, data + got, n - got, flags);
    if (r > 0) {
      got += static_cast<std::size_t>(r);
    } else if (r == 0 || (r < 0 && errno == ECONNRESET && got == 0)) {
      if (got == 0) return false;
      throw std::runtime_error("tcp baseline: peer closed inside a message");
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      throw_errno("recv");
    }
  }
  return true;
}

void send_all(int fd, const std::byte* data, std::size_t n, IoMode mode) {
  const int flags = MSG_NOSIGNAL | (mode == IoMode::kPolling ? MSG_DONTWAIT : 0);
  std::size_t sent = 0;
  while (sent < n) {
    const ssize_t r = send(fd, data + sent, n - sent, flags);
    if (r >= 0) {
      sent += static_cast<std::size_t>(r);
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      throw_errno("send");
    }
  }
}

// A buffer whose pages are touched up front: a first-touched page costs microseconds, which
// would otherwise land in the first timed repetitions.
std::unique_ptr<std::byte[]> touched_buffer(std::size_t size) {
  auto buffer = std::make_unique_for_overwrite<std::byte[]>(std::max<std::size_t>(size, 1));
  std::memset(buffer.get(), 0x5a, std::max<std::size_t>(size, 1));
  return buffer;
}

// The helper's main: listens on 127.0.0.1 (kernel-chosen port, printed on stdout), serves one
// connection with the pattern its Hello asks for, and exits 0 when the client disconnects.
int tcp_baseline_server(const std::vector<std::string>& /*args*/) {
  signal(SIGALRM, SIG_DFL);
  alarm(kWatchdogSeconds);  // the default action of SIGALRM ends the process

  Fd listener = tcp_socket();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw_errno("bind");
  }
  if (listen(listener.get(), 1) != 0) throw_errno("listen");
  socklen_t len = sizeof addr;
  if (getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw_errno("getsockname");
  }
  std::printf("%u\n", static_cast<unsigned>(ntohs(addr.sin_port)));
  std::fflush(stdout);

  Fd conn(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (conn.get() < 0) throw_errno("accept");
  listener.reset();
  set_nodelay(conn.get());

  Hello hello;
  if (!recv_exact(conn.get(), reinterpret_cast<std::byte*>(&hello), sizeof hello,
                  IoMode::kBlocking) ||
      hello.magic != kHelloMagic || hello.msg_size == 0) {
    std::fprintf(stderr, "tcp baseline server: bad hello\n");
    return 2;
  }
  auto buffer = touched_buffer(hello.msg_size);
  const std::byte ack{1};
  while (recv_exact(conn.get(), buffer.get(), hello.msg_size, hello.mode)) {
    if (hello.pattern == Pattern::kEcho) {
      send_all(conn.get(), buffer.get(), hello.msg_size, hello.mode);
    } else {
      send_all(conn.get(), &ack, 1, hello.mode);
    }
  }
  return 0;
}

DANGO_REGISTER_BENCH_HELPER(tcp_baseline, tcp_baseline_server);

// The client side: starts a helper server, connects, sends the Hello. finish() closes the
// connection and checks that the helper exited cleanly; without it the helper is killed.
class TcpBaselineClient {
 public:
  TcpBaselineClient(Pattern pattern, IoMode mode, std::size_t msg_size)
      : server_("tcp_baseline"), conn_(tcp_socket()) {
    const std::string line = server_.read_line();
    const int port = std::stoi(line);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    if (connect(conn_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw_errno("connect to 127.0.0.1:" + line);
    }
    set_nodelay(conn_.get());
    Hello hello{.pattern = pattern, .mode = mode, .msg_size = msg_size};
    send_all(conn_.get(), reinterpret_cast<const std::byte*>(&hello), sizeof hello,
             IoMode::kBlocking);
  }

  int fd() const { return conn_.get(); }

  void finish() {
    conn_.reset();
    const auto code = server_.wait_exit(std::chrono::seconds(5));
    if (!code) throw std::runtime_error("tcp baseline: helper server did not exit");
    if (*code != 0) {
      throw std::runtime_error("tcp baseline: helper server exited with code " +
                               std::to_string(*code));
    }
  }

 private:
  HelperProcess server_;
  Fd conn_;
};

}  // namespace

// ---- TCP ping-pong ----------------------------------------------------------------------------

PingPongResult tcp_pingpong(std::size_t msg_size, std::size_t iterations, IoMode mode) {
  if (msg_size == 0) throw std::invalid_argument("tcp_pingpong: msg_size must be >= 1");
  TcpBaselineClient client(Pattern::kEcho, mode, msg_size);
  auto out = touched_buffer(msg_size);
  auto in = touched_buffer(msg_size);
  auto round_trip = [&] {
    send_all(client.fd(), out.get(), msg_size, mode);
    if (!recv_exact(client.fd(), in.get(), msg_size, mode)) {
      throw std::runtime_error("tcp_pingpong: helper server closed the connection");
    }
  };
  PingPongResult result = time_round_trips(pingpong_warmup(iterations), iterations, round_trip);
  client.finish();
  return result;
}

PingPongResult tcp_pingpong_blocking(std::size_t msg_size, std::size_t iterations) {
  return tcp_pingpong(msg_size, iterations, IoMode::kBlocking);
}

PingPongResult tcp_pingpong_poll(std::size_t msg_size, std::size_t iterations) {
  return tcp_pingpong(msg_size, iterations, IoMode::kPolling);
}

std::size_t pingpong_iterations(Effort effort) { return effort.quick ? 2000 : 20000; }

// ---- TCP stream -------------------------------------------------------------------------------

double tcp_stream_gib_per_s(std::size_t size, std::size_t repetitions, IoMode mode) {
  if (size == 0) throw std::invalid_argument("tcp_stream: size must be >= 1");
  TcpBaselineClient client(Pattern::kSink, mode, size);
  auto data = touched_buffer(size);
  std::byte ack{};
  auto repetition = [&] {
    send_all(client.fd(), data.get(), size, mode);
    if (!recv_exact(client.fd(), &ack, 1, mode)) {
      throw std::runtime_error("tcp_stream: helper server closed the connection");
    }
  };
  repetition();  // warm-up: the server touches its side, the socket buffers grow
  std::vector<double> seconds;
  seconds.reserve(repetitions);
  for (std::size_t i = 0; i < repetitions; ++i) {
    const Stopwatch watch;
    repetition();
    seconds.push_back(watch.elapsed_s());
  }
  client.finish();
  return gib_per_s(static_cast<double>(size), median(std::move(seconds)));
}

StreamResult tcp_stream(std::size_t size, Effort effort) {
  const std::size_t total = effort.quick ? 32 * kMiB : 256 * kMiB;
  const std::size_t min_reps = effort.quick ? 5 : 20;
  const std::size_t max_reps = effort.quick ? 2000 : 20000;  // bounds small sizes' run time
  StreamResult result;
  result.repetitions = std::clamp(total / std::max<std::size_t>(size, 1), min_reps, max_reps);
  result.blocking_gib_per_s = tcp_stream_gib_per_s(size, result.repetitions, IoMode::kBlocking);
  result.polling_gib_per_s = tcp_stream_gib_per_s(size, result.repetitions, IoMode::kPolling);
  result.gib_per_s = std::max(result.blocking_gib_per_s, result.polling_gib_per_s);
  return result;
}

// ---- memcpy -----------------------------------------------------------------------------------

double memcpy_bandwidth(std::size_t size, Effort effort) {
  if (size == 0) return 0;
  auto src = touched_buffer(size);
  auto dst = touched_buffer(size);
  std::memcpy(dst.get(), src.get(), size);
  // Each sample copies >= 1 MiB so that the clock's ~20 ns is negligible for small sizes.
  const std::size_t copies_per_sample = std::max<std::size_t>(1, kMiB / size);
  const std::size_t samples = effort.quick ? 10 : 50;
  std::vector<double> seconds;
  seconds.reserve(samples);
  for (std::size_t s = 0; s < samples; ++s) {
    const Stopwatch watch;
    for (std::size_t c = 0; c < copies_per_sample; ++c) {
      std::memcpy(dst.get(), src.get(), size);
      do_not_optimize(dst[0]);
    }
    seconds.push_back(watch.elapsed_s());
  }
  return gib_per_s(static_cast<double>(size * copies_per_sample), median(std::move(seconds)));
}

// ---- threads ----------------------------------------------------------------------------------

double std_thread_create_join_ns(Effort effort) {
  const std::size_t warmup = 10;
  const std::size_t samples = effort.quick ? 200 : 2000;
  std::vector<double> ns;
  ns.reserve(samples);
  for (std::size_t i = 0; i < warmup + samples; ++i) {
    const Stopwatch watch;
    std::thread thread([] {});
    thread.join();
    if (i >= warmup) ns.push_back(watch.elapsed_ns());
  }
  return median(std::move(ns));
}

double boost_fiber_create_join_ns(Effort effort) {
  // Timed in batches: one create+join is too short for a clock read each.
  constexpr std::size_t kBatch = 100;
  const std::size_t warmup = 5;
  const std::size_t samples = effort.quick ? 50 : 500;
  std::vector<double> ns;
  ns.reserve(samples);
  for (std::size_t s = 0; s < warmup + samples; ++s) {
    const Stopwatch watch;
    for (std::size_t i = 0; i < kBatch; ++i) {
      boost::fibers::fiber fiber([] {});
      fiber.join();
    }
    if (s >= warmup) ns.push_back(watch.elapsed_ns() / kBatch);
  }
  return median(std::move(ns));
}

}  // namespace dango::bench
