#pragma once
// Configuration of the user-level-thread runtime: pools and execution streams. Read from the
// "threads" section of a Dango JSON document (DESIGN.md) or built in C++ with designated
// initializers.

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace dango::thread {

// Name of the pool and execution stream that always exist: the primary stream is the thread
// that created the runtime, and it runs the primary pool's ULTs whenever that thread waits.
inline constexpr std::string_view kPrimary = "__primary__";

// How a pool orders its ULTs and whether an idle execution stream may sleep on it.
enum class PoolKind {
  kFifo,      // first in, first out; streams serving only such pools never sleep (busy polling)
  kFifoWait,  // first in, first out; idle streams sleep and are woken when a ULT arrives
  kPrioWait,  // highest SpawnOptions::priority first, FIFO among equals; idle streams sleep
};

struct PoolOptions {
  std::string name{};                     // unique among pools
  PoolKind kind = PoolKind::kFifoWait;    // default: sleeping when idle costs no CPU

  static PoolOptions from_json(const nlohmann::json& json, std::string_view path);
};

struct XstreamOptions {
  std::string name{};              // unique among execution streams; "__primary__" configures
                                   // the pools of the caller's thread
  std::vector<std::string> pools{};  // pools served, highest precedence first

  static XstreamOptions from_json(const nlohmann::json& json, std::string_view path);
};

struct ThreadsOptions {
  // Pools besides "__primary__" (which exists implicitly, kind fifo_wait, unless listed here).
  std::vector<PoolOptions> pools{};
  // Execution streams (OS threads) started by the runtime; "__primary__" may be listed to
  // choose the pools the caller's thread serves (default: just "__primary__").
  std::vector<XstreamOptions> xstreams{};
  // Pool running the RPC engine's network progress loop (default "__primary__").
  std::string progress_pool{kPrimary};
  // Pool running RPC handlers of providers that name no pool (default "__primary__").
  std::string rpc_pool{kPrimary};
  // Stack of each ULT; stacks are cached and reused, untouched pages cost nothing
  // (default 256 KiB).
  size_t stack_size = size_t{256} << 10;
  // How long an idle execution stream keeps polling its pools before it sleeps. Polling avoids
  // the tens of µs an idle CPU takes to wake up, at the cost of CPU while idle (default 50 µs).
  // (JSON key "idle_poll_us")
  std::chrono::microseconds idle_poll{50};

  // Parses a "threads" JSON section. Unknown keys, wrong types, unknown pools, pools used by no
  // execution stream and duplicate names throw dango::ConfigError naming the key path, which
  // starts with `path`.
  static ThreadsOptions from_json(const nlohmann::json& json, std::string_view path = "threads");
  // The effective configuration, defaults filled in.
  nlohmann::json to_json() const;
  // Checks the cross-references (also done by from_json and by the Runtime constructor).
  void validate(std::string_view path = "threads") const;
};

}  // namespace dango::thread
