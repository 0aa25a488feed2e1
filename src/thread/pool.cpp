#include "dango/common/error.hpp"
#include "thread/internal.hpp"

namespace dango::thread {
namespace detail {

void PoolImpl::push(UltControl* ult) {
  {
    std::lock_guard lock(guard_);
    if (options_.kind == PoolKind::kPrioWait) {
      // Highest priority first, then spawn order: the key sorts by (-priority, sequence).
      ult->sequence = next_sequence();
      by_priority_.emplace(std::make_pair(-ult->priority, ult->sequence), ult);
    } else {
      ult->next = nullptr;
      (tail_ ? tail_->next : head_) = ult;
      tail_ = ult;
    }
    size_.fetch_add(1, std::memory_order_seq_cst);
  }
  // Pairs with the sleeping stream's seq_cst publish-then-recheck (Parker::park): either it
  // sees our ULT, or we see it sleeping and wake it.
  for (XstreamImpl* stream : streams_) {
    if (stream->sleeping()) {
      stream->wake();
      break;
    }
  }
}

UltControl* PoolImpl::pop() {
  if (size_.load(std::memory_order_relaxed) == 0) return nullptr;
  std::lock_guard lock(guard_);
  UltControl* ult = nullptr;
  if (options_.kind == PoolKind::kPrioWait) {
    if (by_priority_.empty()) return nullptr;
    auto first = by_priority_.begin();
    ult = first->second;
    by_priority_.erase(first);
  } else {
    ult = head_;
    if (!ult) return nullptr;
    head_ = ult->next;
    if (!head_) tail_ = nullptr;
  }
  size_.fetch_sub(1, std::memory_order_relaxed);
  return ult;
}

}  // namespace detail

std::string_view Pool::name() const { return impl_->options().name; }
PoolKind Pool::kind() const { return impl_->options().kind; }
size_t Pool::size() const { return impl_->size(); }

}  // namespace dango::thread
