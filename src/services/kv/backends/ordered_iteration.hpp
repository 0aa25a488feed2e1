#pragma once
// Listing and counting for stores read through a LevelDB-style iterator (LevelDB, RocksDB):
// Seek(slice), Valid(), Next(), SeekToFirst(), key() and value() as slices with data() and
// size(). The caller makes the iterator and converts its status() afterwards.

#include <algorithm>
#include <cstdint>
#include <string_view>

#include "services/kv/backend.hpp"

namespace dango::kv {

// The bytes of a store's slice, borrowed.
template <class Slice>
std::string_view view_of(const Slice& slice) {
  return {slice.data(), slice.size()};
}

// Visits the entries `query` selects, in key order, until `visit` returns false.
template <class Iterator>
void visit_range(Iterator& it, const ListQuery& query, EntryVisitor visit) {
  const std::string_view from = std::max(query.start, query.prefix);
  it.Seek({from.data(), from.size()});
  if (!query.inclusive && it.Valid() && view_of(it.key()) == query.start) it.Next();
  for (; it.Valid(); it.Next()) {
    const std::string_view key = view_of(it.key());
    if (!key.starts_with(query.prefix)) break;
    if (!visit(key, query.with_values ? view_of(it.value()) : std::string_view())) break;
  }
}

// The number of entries (walks every key).
template <class Iterator>
uint64_t count_entries(Iterator& it) {
  uint64_t count = 0;
  for (it.SeekToFirst(); it.Valid(); it.Next()) ++count;
  return count;
}

}  // namespace dango::kv
