// Execution streams and the scheduling of ULTs: spawning, running, yielding, parking, and the
// waits of plain threads (which run their primary stream's ULTs meanwhile).

#include <boost/context/fiber.hpp>
#include <thread>

#include "dango/common/error.hpp"
#include "dango/common/log.hpp"
#include "dango/thread/runtime.hpp"
#include "spdlog/spdlog.h"
#include "thread/internal.hpp"

namespace dango::thread {
namespace detail {

void switch_out(UltControl* self) {
  // The scheduler that resumes us next may be another stream's: keep its continuation.
  StackSwitch sw;
  sw.start(self->caller_bottom, self->caller_size);
  self->caller = std::move(self->caller).resume();
  sw.finish(&self->caller_bottom, &self->caller_size);
}

void unpark(UltControl* ult) {
  UltState state = ult->state.load(std::memory_order_acquire);
  for (;;) {
    switch (state) {
      case UltState::kRunning:
      case UltState::kParking:
        // Not off its stack yet: leave a wake token; the ULT (or its scheduler) consumes it.
        if (ult->state.compare_exchange_weak(state, UltState::kWakePending,
                                             std::memory_order_acq_rel)) {
          return;
        }
        break;
      case UltState::kParked:
        if (ult->state.compare_exchange_weak(state, UltState::kReady, std::memory_order_acq_rel)) {
          ult->pool->push(ult);
          return;
        }
        break;
      default:  // already runnable, or done
        return;
    }
  }
}

XstreamImpl::XstreamImpl(RuntimeImpl& runtime, std::string name, std::vector<PoolImpl*> pools)
    : runtime_(runtime), name_(std::move(name)), pools_(std::move(pools)) {
  for (PoolImpl* pool : pools_) {
    pool->add_stream(this);
    if (pool->options().kind == PoolKind::kFifo) may_sleep_ = false;
  }
}

bool XstreamImpl::has_work() const {
  for (PoolImpl* pool : pools_) {
    if (pool->size() != 0) return true;
  }
  return false;
}

bool XstreamImpl::run_one() {
  for (PoolImpl* pool : pools_) {
    if (UltControl* ult = pool->pop()) {
      run_ult(ult);
      return true;
    }
  }
  return false;
}

void XstreamImpl::run_ult(UltControl* ult) {
  ThreadContext& context = this_thread_context();
  UltControl* outer = context.current;
  context.current = ult;
  ult->state.store(UltState::kRunning, std::memory_order_relaxed);
  if (!ult->fiber) {
    ult->fiber = boost::context::fiber(
        std::allocator_arg, StackAllocator(runtime_.options().stack_size, ult),
        [ult](boost::context::fiber&& caller) {
          StackSwitch entered;
          entered.finish(&ult->caller_bottom, &ult->caller_size);
          ult->caller = std::move(caller);
          try {
            ult->fn();
          } catch (const boost::context::detail::forced_unwind&) {
            throw;
          } catch (...) {
            ult->error = std::current_exception();
          }
          ult->fn.reset();
          StackSwitch leaving;
          leaving.start(ult->caller_bottom, ult->caller_size, /*dying=*/true);
          ult->state.store(UltState::kDone, std::memory_order_release);
          return std::move(ult->caller);
        });
  }
  StackSwitch sw;
  sw.start(ult->stack_bottom, ult->stack_size);
  ult->fiber = std::move(ult->fiber).resume();
  sw.finish();
  context.current = outer;

  // The ULT is off its stack now: act on why it switched out.
  UltState state = ult->state.load(std::memory_order_acquire);
  switch (state) {
    case UltState::kYielding:
      ult->state.store(UltState::kReady, std::memory_order_relaxed);
      ult->pool->push(ult);
      break;
    case UltState::kParking:
      if (ult->state.compare_exchange_strong(state, UltState::kParked,
                                             std::memory_order_acq_rel)) {
        break;
      }
      [[fallthrough]];  // woken while switching out (kWakePending): run it again
    case UltState::kWakePending:
      ult->state.store(UltState::kReady, std::memory_order_relaxed);
      ult->pool->push(ult);
      break;
    case UltState::kDone: {
      RuntimeImpl& runtime = ult->pool->runtime();
      if (ult->detached.load(std::memory_order_acquire) && ult->error) {
        try {
          std::rethrow_exception(ult->error);
        } catch (const std::exception& e) {
          log::get("thread")->error("detached ULT ended with an exception: {}", e.what());
        } catch (...) {
          log::get("thread")->error("detached ULT ended with a non-standard exception");
        }
      }
      ult->done.set_ready();
      ult->release();
      runtime.ult_finished();
      break;
    }
    default:
      break;
  }
}

void XstreamImpl::start() {
  thread_ = std::thread([this] { loop(); });
}

void XstreamImpl::join() {
  stop_.store(true, std::memory_order_release);
  wake();
  if (thread_.joinable()) thread_.join();
}

void XstreamImpl::loop() {
  ThreadContext& context = this_thread_context();
  context.streams.push_back(this);
  bind_thread(&context);
  const auto idle_poll = runtime_.options().idle_poll;
  std::optional<Clock::time_point> idle_since;
  while (!stop_.load(std::memory_order_acquire)) {
    runtime_.poll_timers();
    if (run_one()) {
      idle_since.reset();
      continue;
    }
    auto now = Clock::now();
    if (!idle_since) idle_since = now;
    if (now - *idle_since < idle_poll) {
      __builtin_ia32_pause();
      continue;
    }
    if (!may_sleep_) {
      std::this_thread::yield();
      continue;
    }
    context.parker.park(
        runtime_.timers().earliest(),
        [](void* self) {
          auto* stream = static_cast<XstreamImpl*>(self);
          return stream->has_work() || stream->stop_.load(std::memory_order_acquire);
        },
        this);
  }
  context.streams.clear();
}

bool thread_has_work(void* ctx) {
  for (XstreamImpl* stream : static_cast<ThreadContext*>(ctx)->streams) {
    if (stream->has_work()) return true;
  }
  return false;
}

void wait_on_thread(Waiter& w, std::optional<Clock::time_point> deadline) {
  ThreadContext& context = this_thread_context();
  std::chrono::microseconds idle_poll{0};
  for (XstreamImpl* stream : context.streams) {
    idle_poll = std::max(idle_poll, stream->runtime().options().idle_poll);
  }
  std::optional<Clock::time_point> idle_since;
  while (w.outcome() == WaitOutcome::kPending) {
    bool ran = false;
    for (XstreamImpl* stream : context.streams) {
      stream->runtime().poll_timers();
      ran = stream->run_one() || ran;
    }
    auto now = Clock::now();
    // Checked even when ULTs ran: ULTs that are always ready (e.g. two engines' progress loops
    // sharing this thread) would otherwise keep a deadline from ever being noticed.
    if (deadline && now >= *deadline) {
      w.fire(WaitOutcome::kTimeout);
      break;
    }
    if (ran) {
      idle_since.reset();
      continue;
    }
    if (!idle_since) idle_since = now;
    if (now - *idle_since < idle_poll) {
      __builtin_ia32_pause();
      continue;
    }
    std::optional<Clock::time_point> wake_at = deadline;
    for (XstreamImpl* stream : context.streams) {
      if (auto t = stream->runtime().timers().earliest(); t && (!wake_at || *t < *wake_at)) {
        wake_at = t;
      }
    }
    struct Check {
      Waiter* w;
      ThreadContext* context;
    } check{&w, &context};
    context.parker.park(
        wake_at,
        [](void* p) {
          auto* c = static_cast<Check*>(p);
          return c->w->outcome() != WaitOutcome::kPending || thread_has_work(c->context);
        },
        &check);
  }
}

}  // namespace detail

// --- Ult handle and this_ult --------------------------------------------------------------

Ult& Ult::operator=(Ult&& other) noexcept {
  if (this != &other) {
    detach();
    control_ = std::exchange(other.control_, nullptr);
  }
  return *this;
}

Ult::~Ult() { detach(); }

void Ult::join() {
  if (!control_) throw Error("join: the ULT handle is empty (already joined or detached)");
  control_->done.wait_until();
  std::exception_ptr error = control_->error;
  control_->release();
  control_ = nullptr;
  if (error) std::rethrow_exception(error);
}

void Ult::detach() {
  if (!control_) return;
  control_->detached.store(true, std::memory_order_release);
  control_->release();
  control_ = nullptr;
}

Ult Pool::spawn_function(detail::UltFunction fn, SpawnOptions options) const {
  if (!impl_) throw Error("spawn: invalid pool");
  detail::RuntimeImpl& runtime = impl_->runtime();
  if (runtime.stopping()) {
    throw ShutdownError("spawn in pool \"" + impl_->options().name +
                        "\": the thread runtime is shutting down");
  }
  auto* control = new detail::UltControl;
  control->fn = std::move(fn);
  control->pool = impl_;
  control->priority = options.priority;
  runtime.ult_started();
  impl_->push(control);
  return Ult(control);
}

Pool current_pool() {
  detail::UltControl* self = detail::this_thread_context().current;
  return self ? Pool(self->pool) : Pool();
}

namespace this_ult {

bool inside() { return detail::this_thread_context().current != nullptr; }

void*& local_slot() {
  thread_local void* outside = nullptr;
  detail::UltControl* self = detail::this_thread_context().current;
  return self != nullptr ? self->local : outside;
}

void yield() {
  detail::ThreadContext& context = detail::this_thread_context();
  if (detail::UltControl* self = context.current) {
    self->state.store(detail::UltState::kYielding, std::memory_order_relaxed);
    detail::switch_out(self);
    return;
  }
  bool ran = false;
  for (detail::XstreamImpl* stream : context.streams) ran = stream->run_one() || ran;
  if (!ran) std::this_thread::yield();
}

void sleep_until(std::chrono::steady_clock::time_point deadline) {
  detail::Waiter w;
  if (detail::block(w, deadline) == detail::WaitOutcome::kInterrupted) {
    detail::throw_interrupted();
  }
}

void sleep_for(std::chrono::nanoseconds duration) {
  sleep_until(std::chrono::steady_clock::now() + duration);
}

bool idle_wait(void (*wait)(void* ctx, std::chrono::nanoseconds timeout),
               void (*interrupt)(void* ctx), void* ctx, std::chrono::nanoseconds max_timeout) {
  detail::ThreadContext& context = detail::this_thread_context();
  auto timeout = max_timeout;
  auto now = detail::Clock::now();
  for (detail::XstreamImpl* stream : context.streams) {
    stream->runtime().poll_timers();
    if (auto t = stream->runtime().timers().earliest()) {
      timeout = std::min<std::chrono::nanoseconds>(timeout, std::max(*t - now, detail::Clock::duration::zero()));
    }
  }
  if (timeout <= std::chrono::nanoseconds::zero()) return false;
  bool waited = false;
  context.parker.park_external(
      interrupt, ctx,
      [&] {
        waited = true;
        wait(ctx, timeout);
      },
      detail::thread_has_work, &context);
  return waited;
}

}  // namespace this_ult
}  // namespace dango::thread
