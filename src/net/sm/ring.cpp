// The shared-memory ring of the sm transport (see ring.hpp for the protocol).

#include "net/sm/ring.hpp"

#include <cstring>

namespace dango::net::sm {
namespace {

constexpr size_t record_size(size_t length) {
  return (kRecordHeaderSize + length + kRecordAlign - 1) & ~(kRecordAlign - 1);
}

// Header layout: u64 commit word, u32 payload length, u8 type, 3 bytes unused.
void write_fields(std::byte* header, RecordType type, size_t length) {
  auto length32 = static_cast<uint32_t>(length);
  std::memcpy(header + 8, &length32, 4);
  header[12] = static_cast<std::byte>(type);
}

}  // namespace

Ring::Result Ring::reserve(size_t length, Reservation& out) {
  const size_t size = record_size(length);
  std::atomic_ref<uint64_t> tail(control_->tail);
  uint64_t t = tail.load(std::memory_order_relaxed);
  for (;;) {
    const size_t offset = t & (capacity_ - 1);
    const size_t pad = offset + size > capacity_ ? capacity_ - offset : 0;
    const uint64_t need = pad + size;
    uint64_t h = cached_head_.load(std::memory_order_relaxed);
    if (t + need - h > capacity_) {
      h = std::atomic_ref<uint64_t>(control_->head).load(std::memory_order_acquire);
      if (h > t || t - h > capacity_) return Result::kCorrupt;
      if (t + need - h > capacity_) return Result::kFull;
      cached_head_.store(h, std::memory_order_relaxed);
    }
    if (tail.compare_exchange_weak(t, t + need, std::memory_order_relaxed)) {
      if (pad > 0) {
        std::byte* pad_header = data_ + offset;
        write_fields(pad_header, RecordType::kPad, pad - kRecordHeaderSize);
        commit_word(t).store(t ^ key_, std::memory_order_release);
      }
      const uint64_t position = t + pad;
      out.header = data_ + (position & (capacity_ - 1));
      out.payload = out.header + kRecordHeaderSize;
      out.position = position;
      return Result::kOk;
    }
  }
}

bool Ring::commit(const Reservation& r, RecordType type, size_t length) {
  write_fields(r.header, type, length);
  commit_word(r.position).store(r.position ^ key_, std::memory_order_release);
  // Pairs with the fence in arm_wait(): either the consumer sees this record, or we see its flag.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  std::atomic_ref<uint32_t> waiting(control_->waiting);
  return waiting.load(std::memory_order_relaxed) != 0 &&
         waiting.exchange(0, std::memory_order_relaxed) != 0;
}

void Ring::want_room() {
  std::atomic_ref<uint32_t>(control_->room_wanted).store(1, std::memory_order_relaxed);
  // Pairs with the fence in take_room_request(): either the consumer sees the flag, or the
  // retry that follows sees the room it freed.
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

Ring::Result Ring::peek(Record& out) {
  const uint64_t position = head_;
  if (commit_word(position).load(std::memory_order_acquire) != (position ^ key_)) {
    return Result::kFull;
  }
  const size_t offset = position & (capacity_ - 1);
  const std::byte* header = data_ + offset;
  uint32_t length;
  std::memcpy(&length, header + 8, 4);
  const auto type = static_cast<uint8_t>(header[12]);
  const size_t size = record_size(length);
  if (type < 1 || type > kLastRecordType || length > capacity_ || offset + size > capacity_) {
    return Result::kCorrupt;
  }
  if (type == static_cast<uint8_t>(RecordType::kPad)) {
    if (offset == 0 || offset + size != capacity_) return Result::kCorrupt;
    peeked_size_ = size;
    release();
    return peek(out);  // at most once more: the next record starts at offset 0
  }
  out.type = static_cast<RecordType>(type);
  out.payload = {header + kRecordHeaderSize, length};
  peeked_size_ = size;
  return Result::kOk;
}

void Ring::release() {
  head_ += peeked_size_;
  peeked_size_ = 0;
  std::atomic_ref<uint64_t>(control_->head).store(head_, std::memory_order_release);
}

bool Ring::has_record() const {
  return commit_word(head_).load(std::memory_order_acquire) == (head_ ^ key_);
}

bool Ring::arm_wait() {
  std::atomic_ref<uint32_t>(control_->waiting).store(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!has_record()) return true;
  disarm_wait();
  return false;
}

bool Ring::take_room_request() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  std::atomic_ref<uint32_t> wanted(control_->room_wanted);
  return wanted.load(std::memory_order_relaxed) != 0 &&
         wanted.exchange(0, std::memory_order_relaxed) != 0;
}

void Ring::disarm_wait() {
  std::atomic_ref<uint32_t>(control_->waiting).store(0, std::memory_order_relaxed);
}

}  // namespace dango::net::sm
