#pragma once
// Put modes for stores whose writes go through a batch that its own reads cannot see (RocksDB,
// LevelDB WriteBatch): decides, key by key, what the batch must write, reading the store and the
// batch's own earlier writes (a batch may name a key twice). The caller holds its write lock, so
// nothing changes between the reads and the batch's commit.

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "services/kv/backend.hpp"

namespace dango::kv {

// `read(key, std::string* value) -> Status` returns Ok with found = true/false through
// `found`; `write(key, value)` adds to the batch. Returns the first read failure.
template <class Read, class Write>
Status plan_put(std::span<const std::string_view> keys, std::span<const std::string_view> values,
                PutMode mode, std::vector<bool>& applied, Read&& read, Write&& write) {
  applied.assign(keys.size(), true);
  if (mode == PutMode::Overwrite) {
    for (size_t i = 0; i < keys.size(); ++i) write(keys[i], values[i]);
    return Status::Ok();
  }
  std::unordered_map<std::string_view, std::string> pending;  // this batch's writes so far
  std::string current;
  for (size_t i = 0; i < keys.size(); ++i) {
    bool found = false;
    auto it = pending.find(keys[i]);
    if (it != pending.end()) {
      found = true;
      current = it->second;
    } else {
      Status status = read(keys[i], &current, &found);
      if (!status.ok()) return status;
    }
    std::string next;
    switch (mode) {
      case PutMode::NewOnly:
        if (found) applied[i] = false;
        next.assign(values[i]);
        break;
      case PutMode::ExistOnly:
        if (!found) applied[i] = false;
        next.assign(values[i]);
        break;
      case PutMode::Append:
        next = found ? current : std::string();
        next.append(values[i]);
        break;
      case PutMode::Overwrite:
        break;
    }
    if (!applied[i]) continue;
    write(keys[i], next);
    pending[keys[i]] = std::move(next);
  }
  return Status::Ok();
}

}  // namespace dango::kv
