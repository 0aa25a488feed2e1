// Best-fit extent allocation with coalescing (see extent_allocator.hpp).

#include "services/blob/extent_allocator.hpp"

#include <iterator>

namespace dango::blob {

ExtentAllocator::ExtentAllocator(uint64_t base, uint64_t size, uint64_t block)
    : base_(base), size_(size), block_(block) {
  if (size > 0) insert_free(base, size);
}

void ExtentAllocator::insert_free(uint64_t offset, uint64_t size) {
  by_offset_.emplace(offset, size);
  by_size_.emplace(size, offset);
  free_bytes_ += size;
}

void ExtentAllocator::erase_free(std::map<uint64_t, uint64_t>::iterator it) {
  by_size_.erase({it->second, it->first});
  free_bytes_ -= it->second;
  by_offset_.erase(it);
}

std::optional<uint64_t> ExtentAllocator::allocate(uint64_t size) {
  const uint64_t need = round_up(size);
  if (need == 0 || need < size) return std::nullopt;  // zero or overflow
  auto fit = by_size_.lower_bound({need, 0});
  if (fit == by_size_.end()) return std::nullopt;
  const auto [free_size, offset] = *fit;
  erase_free(by_offset_.find(offset));
  if (free_size > need) insert_free(offset + need, free_size - need);
  return offset;
}

bool ExtentAllocator::release(uint64_t offset, uint64_t size) {
  uint64_t length = round_up(size);
  if (length == 0 || offset < base_ || offset > base_ + size_ || length > base_ + size_ - offset) {
    return false;
  }
  // Refuse any overlap with a free extent: the one starting at or before `offset` must end by
  // it, and the next one must start at or after our end.
  auto next = by_offset_.lower_bound(offset);
  if (next != by_offset_.end() && next->first < offset + length) return false;
  if (next != by_offset_.begin()) {
    auto previous = std::prev(next);
    if (previous->first + previous->second > offset) return false;
  }
  // Merge with the neighbours it touches.
  if (next != by_offset_.end() && next->first == offset + length) {
    length += next->second;
    auto after = std::next(next);
    erase_free(next);
    next = after;
  }
  if (next != by_offset_.begin()) {
    auto previous = std::prev(next);
    if (previous->first + previous->second == offset) {
      offset = previous->first;
      length += previous->second;
      erase_free(previous);
    }
  }
  insert_free(offset, length);
  return true;
}

bool ExtentAllocator::reserve(uint64_t offset, uint64_t size) {
  const uint64_t length = round_up(size);
  if (length == 0) return false;
  auto it = by_offset_.upper_bound(offset);
  if (it == by_offset_.begin()) return false;
  --it;  // the free extent starting at or before `offset`
  const uint64_t start = it->first;
  const uint64_t end = start + it->second;
  if (offset + length > end || offset + length < offset) return false;
  erase_free(it);
  if (offset > start) insert_free(start, offset - start);
  if (end > offset + length) insert_free(offset + length, end - (offset + length));
  return true;
}

uint64_t ExtentAllocator::largest_free() const {
  return by_size_.empty() ? 0 : by_size_.rbegin()->first;
}

std::string ExtentAllocator::check() const {
  if (by_offset_.size() != by_size_.size()) return "the two indexes differ in size";
  uint64_t total = 0;
  uint64_t previous_end = 0;
  bool first = true;
  for (const auto& [offset, size] : by_offset_) {
    if (!by_size_.contains({size, offset})) return "free extent missing from the size index";
    if (size == 0 || offset % block_ != 0 || size % block_ != 0) return "misaligned free extent";
    if (offset < base_ || offset + size > base_ + size_) return "free extent outside the area";
    if (!first && offset <= previous_end) return "free extents overlap or were not merged";
    previous_end = offset + size;
    first = false;
    total += size;
  }
  if (total != free_bytes_) return "free byte count is wrong";
  return {};
}

}  // namespace dango::blob
