#include "dango/thread/runtime.hpp"

#include <unordered_set>

#include "dango/common/error.hpp"
#include "dango/common/log.hpp"
#include "spdlog/spdlog.h"
#include "thread/internal.hpp"

namespace dango::thread {
namespace detail {

RuntimeImpl::RuntimeImpl(ThreadsOptions options)
    : options_(std::move(options)) {
  options_.validate();
  bool primary_pool_listed = false;
  for (const auto& pool : options_.pools) {
    pools_.push_back(std::make_unique<PoolImpl>(*this, pool));
    primary_pool_listed = primary_pool_listed || pool.name == kPrimary;
  }
  if (!primary_pool_listed) {
    pools_.push_back(std::make_unique<PoolImpl>(
        *this, PoolOptions{.name = std::string(kPrimary), .kind = PoolKind::kFifoWait}));
  }
  auto pools_of = [this](const std::vector<std::string>& names) {
    std::vector<PoolImpl*> result;
    for (const auto& name : names) result.push_back(find_pool(name));
    return result;
  };
  // The primary stream first: the caller's thread, serving "__primary__" unless configured.
  std::vector<std::string> primary_pools{std::string(kPrimary)};
  for (const auto& xs : options_.xstreams) {
    if (xs.name == kPrimary) primary_pools = xs.pools;
  }
  std::unordered_set<std::string> served;
  for (const auto& xs : options_.xstreams) served.insert(xs.pools.begin(), xs.pools.end());
  if (!served.count(std::string(kPrimary)) &&
      std::find(primary_pools.begin(), primary_pools.end(), kPrimary) == primary_pools.end()) {
    primary_pools.emplace_back(kPrimary);  // the implicit primary pool always has a stream
  }
  streams_.push_back(std::make_unique<XstreamImpl>(*this, std::string(kPrimary),
                                                   pools_of(primary_pools)));
  for (const auto& xs : options_.xstreams) {
    if (xs.name == kPrimary) continue;
    streams_.push_back(std::make_unique<XstreamImpl>(*this, xs.name, pools_of(xs.pools)));
  }
  primary_thread_ = &this_thread_context();
  primary_thread_->streams.push_back(streams_[0].get());
  streams_[0]->bind_thread(primary_thread_);
  for (size_t i = 1; i < streams_.size(); ++i) streams_[i]->start();
}

RuntimeImpl::~RuntimeImpl() { shutdown(std::chrono::seconds(5)); }

PoolImpl* RuntimeImpl::find_pool(std::string_view name) {
  for (auto& pool : pools_) {
    if (pool->options().name == name) return pool.get();
  }
  return nullptr;
}

void RuntimeImpl::add_blocked(Waiter* waiter) {
  std::lock_guard lock(blocked_mutex_);
  waiter->blocked_prev = nullptr;
  waiter->blocked_next = blocked_;
  if (blocked_) blocked_->blocked_prev = waiter;
  blocked_ = waiter;
}

void RuntimeImpl::remove_blocked(Waiter* waiter) {
  std::lock_guard lock(blocked_mutex_);
  (waiter->blocked_prev ? waiter->blocked_prev->blocked_next : blocked_) = waiter->blocked_next;
  if (waiter->blocked_next) waiter->blocked_next->blocked_prev = waiter->blocked_prev;
  waiter->blocked_prev = waiter->blocked_next = nullptr;
}

void RuntimeImpl::wake_all_streams() {
  for (auto& stream : streams_) stream->wake();
}

void RuntimeImpl::shutdown(std::chrono::milliseconds grace) {
  if (shut_down_) return;
  shut_down_ = true;
  stopping_.store(true, std::memory_order_seq_cst);
  const auto deadline = Clock::now() + grace;
  ThreadContext& context = this_thread_context();
  const bool on_primary = &context == primary_thread_;
  while (live_.load(std::memory_order_acquire) > 0 && Clock::now() < deadline) {
    {
      // Blocked ULTs are woken with ShutdownError; one that blocks again is interrupted at once.
      std::lock_guard lock(blocked_mutex_);
      for (Waiter* w = blocked_; w; w = w->blocked_next) w->fire(WaitOutcome::kInterrupted);
    }
    poll_timers();
    if (!(on_primary && streams_[0]->run_one())) std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  if (int64_t left = live_.load(); left > 0) {
    log::get("thread")->error("thread runtime shut down with {} ULT(s) still running after {} ms;"
                              " they are abandoned",
                              left, grace.count());
  }
  for (size_t i = 1; i < streams_.size(); ++i) streams_[i]->join();
  if (!on_primary) {
    log::get("thread")->warn("thread runtime destroyed on another thread than its primary one");
  }
  auto& primary_streams = primary_thread_->streams;
  primary_streams.erase(std::remove(primary_streams.begin(), primary_streams.end(), streams_[0].get()),
                        primary_streams.end());
}

}  // namespace detail

Runtime::Runtime(ThreadsOptions options)
    : impl_(std::make_unique<detail::RuntimeImpl>(std::move(options))) {}

Runtime::~Runtime() = default;

Pool Runtime::pool(std::string_view name) const {
  detail::PoolImpl* pool = impl_->find_pool(name);
  if (!pool) throw ConfigError("no pool named \"" + std::string(name) + "\" in the thread runtime");
  return Pool(pool);
}

const ThreadsOptions& Runtime::options() const { return impl_->options(); }

std::vector<Pool> Runtime::pools() const {
  std::vector<Pool> pools;
  for (const auto& pool : impl_->pools()) pools.push_back(Pool(pool.get()));
  return pools;
}

std::vector<StreamActivity> Runtime::activity() const {
  std::vector<StreamActivity> result;
  const auto alive = detail::Clock::now() - impl_->started();
  for (const auto& stream : impl_->streams()) {
    const detail::ThreadContext* context = stream->thread_context();
    result.push_back({.name = stream->name(),
                      .alive = std::chrono::duration_cast<std::chrono::nanoseconds>(alive),
                      .slept = context ? context->parker.slept() : std::chrono::nanoseconds(0)});
  }
  return result;
}

void Runtime::shutdown(std::chrono::milliseconds grace) { impl_->shutdown(grace); }

bool Runtime::stopping() const { return impl_->stopping(); }

}  // namespace dango::thread
