#pragma once
// Helpers of the get/put tests: scattered buffers, and a server/client pair that runs one
// transfer at a time.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dango/net/transport.hpp"
#include "net_test_util.hpp"

namespace dango::net::testing {

// Fills `bytes` with a pseudo-random sequence determined by `seed`.
inline void fill(std::span<std::byte> bytes, uint32_t seed) {
  uint32_t x = seed;
  for (auto& b : bytes) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<std::byte>(x >> 24);
  }
}

// A buffer split into uneven segments at the given fractions, as a user's scattered memory would
// be.
struct Buffer {
  Buffer(size_t size, std::initializer_list<double> cuts) : bytes(size) {
    size_t start = 0;
    for (double cut : cuts) {
      size_t end = static_cast<size_t>(static_cast<double>(size) * cut);
      segments.emplace_back(bytes.data() + start, end - start);
      start = end;
    }
    segments.emplace_back(bytes.data() + start, size - start);
  }
  void fill(uint32_t seed) { testing::fill(bytes, seed); }
  std::vector<std::byte> bytes;
  std::vector<std::span<std::byte>> segments;
};

// A listening server and a client-only transport of one scheme, the client's transfers split in
// 1 MiB chunks. A short connect_timeout: a transport that finds lost peers by probing (ofi)
// declares one after that long.
class BulkPair {
 protected:
  void start(const std::string& scheme) {
    server_ = make_transport(loopback_address(scheme));
    client_ = make_transport(scheme, {.bulk_chunk_size = size_t{1} << 20,
                                      .connect_timeout = std::chrono::milliseconds(1000)});
    server_->set_handler(&server_inbox_);
    client_->set_handler(&client_inbox_);
    peer_ = client_->lookup(server_->address());
  }

  // Runs one get (or put) to completion; `server_helps` false drives the client alone.
  Status run(bool is_get, std::span<const std::byte> remote, size_t remote_offset,
             MemoryRegion& local, size_t local_offset, size_t size, bool server_helps = true) {
    Done done;
    if (is_get) {
      client_->get(peer_, remote, remote_offset, local, local_offset, size, &done);
    } else {
      client_->put(peer_, remote, remote_offset, local, local_offset, size, &done);
    }
    std::vector<Transport*> driven{client_.get()};
    if (server_helps) driven.push_back(server_.get());
    EXPECT_TRUE(drive(
        driven, [&] { return done.fired(); }, std::chrono::seconds(30)));
    EXPECT_EQ(done.calls(), 1);
    return done.status();
  }

  // A message still gets through: the transfers before left the connection usable.
  void expect_peer_usable() {
    size_t before = server_inbox_.count();
    ASSERT_TRUE(send_text(*client_, peer_, "still here").ok());
    ASSERT_TRUE(
        drive({client_.get(), server_.get()}, [&] { return server_inbox_.count() == before + 1; }));
  }

  std::unique_ptr<Transport> server_, client_;
  Inbox server_inbox_, client_inbox_;
  PeerRef peer_;
};

}  // namespace dango::net::testing
