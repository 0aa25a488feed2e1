// ULT stacks: mmap'd with a guard page below, cached and reused so that a warm spawn costs no
// system call. A per-thread cache serves the common case without a lock; the shared cache
// takes the overflow (a ULT often ends on another stream than the one that started it).

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#include "thread/internal.hpp"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
// A reused stack still carries the redzone poison of the frames of the ULT that used it last
// (a ULT's frames are left, not unwound, when it switches away for good): clear it.
#define DANGO_UNPOISON_STACK(base, size) ASAN_UNPOISON_MEMORY_REGION(base, size)
#include <sanitizer/common_interface_defs.h>
#else
#define DANGO_UNPOISON_STACK(base, size) ((void)(base), (void)(size))
#endif

namespace dango::thread::detail {
namespace {

constexpr size_t kThreadCacheMax = 32;
constexpr size_t kSharedCacheMax = 1024;

size_t page_size() {
  static const size_t size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

struct FreeStack {
  void* base;  // start of the mapping (the guard page)
  size_t size;
};

struct SharedCache {
  std::mutex mutex;
  std::vector<FreeStack> stacks;
};
SharedCache& shared_cache() {
  static auto* cache = new SharedCache;  // leaked on purpose: used by thread exits after main
  return *cache;
}

void unmap(const FreeStack& stack) { munmap(stack.base, stack.size + page_size()); }

struct ThreadCache {
  std::vector<FreeStack> stacks;
  ~ThreadCache() {
    auto& shared = shared_cache();
    std::lock_guard lock(shared.mutex);
    for (auto& s : stacks) {
      if (shared.stacks.size() < kSharedCacheMax) {
        shared.stacks.push_back(s);
      } else {
        unmap(s);
      }
    }
  }
};
ThreadCache& thread_cache() {
  thread_local ThreadCache cache;
  return cache;
}

bool take(std::vector<FreeStack>& from, size_t size, FreeStack& out) {
  for (size_t i = from.size(); i-- > 0;) {
    if (from[i].size == size) {
      out = from[i];
      from[i] = from.back();
      from.pop_back();
      return true;
    }
  }
  return false;
}

}  // namespace

boost::context::stack_context StackAllocator::allocate() {
  const size_t size = (size_ + page_size() - 1) / page_size() * page_size();
  FreeStack stack{};
  bool found = take(thread_cache().stacks, size, stack);
  if (!found) {
    auto& shared = shared_cache();
    std::lock_guard lock(shared.mutex);
    found = take(shared.stacks, size, stack);
  }
  if (!found) {
    void* base = mmap(nullptr, size + page_size(), PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (base == MAP_FAILED) throw std::bad_alloc();
    mprotect(base, page_size(), PROT_NONE);  // guard page: an overflow faults, never corrupts
    stack = {base, size};
  }
  DANGO_UNPOISON_STACK(static_cast<char*>(stack.base) + page_size(), size);
  if (owner_) {
    owner_->stack_bottom = static_cast<char*>(stack.base) + page_size();
    owner_->stack_size = size;
  }
  boost::context::stack_context sctx;
  sctx.size = size;
  sctx.sp = static_cast<char*>(stack.base) + page_size() + size;
  return sctx;
}

void StackAllocator::deallocate(boost::context::stack_context& sctx) noexcept {
  FreeStack stack{static_cast<char*>(sctx.sp) - sctx.size - page_size(), sctx.size};
  auto& local = thread_cache().stacks;
  if (local.size() < kThreadCacheMax) {
    local.push_back(stack);
    return;
  }
  auto& shared = shared_cache();
  std::lock_guard lock(shared.mutex);
  if (shared.stacks.size() < kSharedCacheMax) {
    shared.stacks.push_back(stack);
  } else {
    unmap(stack);
  }
}

#if defined(__SANITIZE_ADDRESS__)
void StackSwitch::start(const void* bottom, size_t size, bool dying) {
  __sanitizer_start_switch_fiber(dying ? nullptr : &fake_stack, bottom, size);
}
void StackSwitch::finish(const void** from_bottom, size_t* from_size) {
  __sanitizer_finish_switch_fiber(fake_stack, from_bottom, from_size);
}
#else
void StackSwitch::start(const void*, size_t, bool) {}
void StackSwitch::finish(const void**, size_t*) {}
#endif

}  // namespace dango::thread::detail
