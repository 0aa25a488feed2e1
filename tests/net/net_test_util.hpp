#pragma once
// Helpers shared by the net tests: recording handlers, completions, and a progress driver.

#include <atomic>
#include <chrono>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "dango/net/transport.hpp"

namespace dango::net::testing {

using namespace std::chrono_literals;

inline std::span<const std::byte> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

inline Status send_text(Transport& t, const PeerRef& to, std::string_view text) {
  std::span<const std::byte> parts[] = {bytes_of(text)};
  return t.send(to, parts);
}

// Records every message and lost peer; thread-safe.
class Inbox : public MessageHandler {
 public:
  void on_message(const PeerRef& from, std::span<const std::byte> message) override {
    std::lock_guard lock(mutex_);
    messages_.emplace_back(
        from, std::string(reinterpret_cast<const char*>(message.data()), message.size()));
  }
  void on_peer_lost(const PeerRef& peer) override {
    std::lock_guard lock(mutex_);
    lost_.push_back(peer);
  }
  size_t count() const {
    std::lock_guard lock(mutex_);
    return messages_.size();
  }
  size_t lost_count() const {
    std::lock_guard lock(mutex_);
    return lost_.size();
  }
  std::pair<PeerRef, std::string> message(size_t i) const {
    std::lock_guard lock(mutex_);
    return messages_.at(i);
  }
  PeerRef lost(size_t i) const {
    std::lock_guard lock(mutex_);
    return lost_.at(i);
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<PeerRef, std::string>> messages_;
  std::vector<PeerRef> lost_;
};

// Sends every message back to its sender.
class Echo : public MessageHandler {
 public:
  explicit Echo(Transport& transport) : transport_(transport) {}
  void on_message(const PeerRef& from, std::span<const std::byte> message) override {
    // Counted before the reply leaves: a client that has the reply sees the count.
    ++echoed;
    std::span<const std::byte> parts[] = {message};
    transport_.send(from, parts);
  }
  void on_peer_lost(const PeerRef&) override { ++lost; }
  std::atomic<size_t> echoed{0};
  std::atomic<size_t> lost{0};

 private:
  Transport& transport_;
};

class Done : public Completion {
 public:
  void complete(Status s) override {
    std::lock_guard lock(mutex_);
    status_ = std::move(s);
    ++calls_;
    fired_.store(true);
  }
  bool fired() const { return fired_.load(); }
  int calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  Status status() const {
    std::lock_guard lock(mutex_);
    return status_;
  }

 private:
  mutable std::mutex mutex_;
  Status status_;
  int calls_ = 0;
  std::atomic<bool> fired_{false};
};

// Runs progress() of every transport in turn until `done()` holds or `limit` passes.
template <class Pred>
bool drive(std::vector<Transport*> transports, Pred done,
           std::chrono::milliseconds limit = std::chrono::milliseconds(10000)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    for (auto* t : transports) t->progress(std::chrono::microseconds(0));
  }
  return true;
}

// Runs one transport's progress loop on its own thread until destroyed.
class ProgressThread {
 public:
  explicit ProgressThread(Transport& t)
      : transport_(t), thread_([this] {
          while (!stop_.load()) transport_.progress(std::chrono::milliseconds(50));
        }) {}
  ~ProgressThread() {
    stop_.store(true);
    transport_.interrupt();
    thread_.join();
  }

 private:
  Transport& transport_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace dango::net::testing
