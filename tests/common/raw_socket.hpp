#pragma once
// A raw TCP client socket to a server on 127.0.0.1, for tests that speak to a server byte by
// byte (garbage, truncated frames) the way a broken or hostile peer would. Closed on scope exit.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace dango::testing {

class RawSocket {
 public:
  // `address` ends with ":PORT" (e.g. "tcp://127.0.0.1:4242").
  explicit RawSocket(const std::string& address) {
    auto port = static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  }
  ~RawSocket() { ::close(fd_); }
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;

  void write(const std::string& bytes) {
    EXPECT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  // What has arrived, without waiting (empty when nothing has).
  std::string read_some() {
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  }
  // Reads exactly `n` bytes, or returns nothing when the peer closes or `limit` passes.
  std::optional<std::string> read_exactly(size_t n,
                                          std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (out.size() < n) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t r = ::recv(fd_, buf, std::min(sizeof buf, n - out.size()), 0);
      if (r <= 0) return std::nullopt;
      out.append(buf, static_cast<size_t>(r));
    }
    return out;
  }
  // True once the server closed its end (recv returns 0 or an error) within `limit`; with a
  // zero limit, looks once without waiting.
  bool closed_by_peer(std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    do {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, limit.count() == 0 ? 0 : 50) <= 0) continue;
      char buf[4096];
      if (::recv(fd_, buf, sizeof buf, MSG_DONTWAIT) <= 0) return true;
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
  }
  // True when nothing arrives within `limit` and the connection stays open.
  bool quiet_for(std::chrono::milliseconds limit) {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(limit.count())) == 0;
  }

 private:
  int fd_ = -1;
};

}  // namespace dango::testing
