#pragma once
// ExtentAllocator: the space allocator of a file target. The data area [base, base + size) is
// cut into extents of whole blocks; allocate() takes the smallest free extent that fits (best
// fit, so large runs stay whole), release() gives an extent back and merges it with free
// neighbours, so erased space is reused and does not fragment into slivers.
// Cost: O(log n) per call in the number of free extents. Not thread-safe (the file target holds
// its lock around it).

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

namespace dango::blob {

class ExtentAllocator {
 public:
  // Manages [base, base + size); `block` (a power of two) is the allocation unit, and base and
  // size are multiples of it. Everything starts free.
  ExtentAllocator(uint64_t base, uint64_t size, uint64_t block);

  // The offset of a new extent of round_up(size) bytes, or nullopt when no free extent is that
  // large. `size` > 0.
  std::optional<uint64_t> allocate(uint64_t size);
  // Gives back the extent [offset, offset + round_up(size)), which must be allocated.
  // Returns false (and changes nothing) when it is not: a double free or a bad extent.
  bool release(uint64_t offset, uint64_t size);
  // Marks [offset, offset + round_up(size)) allocated (rebuilding the layout of a target on
  // restart). Returns false (and changes nothing) when any of it is not free: the extent
  // overlaps another one or lies outside the area.
  bool reserve(uint64_t offset, uint64_t size);

  uint64_t round_up(uint64_t size) const { return (size + block_ - 1) & ~(block_ - 1); }
  uint64_t free_bytes() const { return free_bytes_; }
  uint64_t used_bytes() const { return size_ - free_bytes_; }
  uint64_t free_extents() const { return by_offset_.size(); }
  uint64_t capacity() const { return size_; }
  // The largest extent allocate() could return now.
  uint64_t largest_free() const;
  // Checks the internal invariants (both indexes agree, no two free extents touch or overlap,
  // totals match); an empty string when they hold, else what is wrong.
  std::string check() const;

 private:
  void insert_free(uint64_t offset, uint64_t size);
  void erase_free(std::map<uint64_t, uint64_t>::iterator it);

  uint64_t base_;
  uint64_t size_;
  uint64_t block_;
  uint64_t free_bytes_ = 0;
  std::map<uint64_t, uint64_t> by_offset_;           // free extents: offset -> size
  std::set<std::pair<uint64_t, uint64_t>> by_size_;  // free extents: (size, offset)
};

}  // namespace dango::blob
