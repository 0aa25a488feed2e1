#pragma once
// The in-memory stores (map, unordered_map): one template over the container, a shared_mutex
// (readers in parallel, writers alone) making every mode atomic per key. Nothing is persisted.

#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "dango/common/config.hpp"
#include "services/kv/backend.hpp"

namespace dango::kv {

// Transparent hashing so that lookups by string_view allocate nothing.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

template <class Container>
class MemoryBackend : public Backend {
 public:
  static constexpr bool kPersistent = false;
  static constexpr bool kOrdered =
      std::is_same_v<Container, std::map<std::string, std::string, std::less<>>>;

  MemoryBackend(const nlohmann::json& config, const BackendContext& context) {
    config::ConfigReader reader(config, context.config_path);
    reader.finish();  // no options: any key is a mistake
  }

  nlohmann::json config() const override { return nlohmann::json::object(); }
  // A write is a few map operations per item: nothing per write but the lock.
  bool accepts_short_writes() const override { return true; }

  Status put(std::span<const std::string_view> keys, std::span<const std::string_view> values,
             PutMode mode, std::vector<bool>& applied) override {
    applied.assign(keys.size(), true);
    std::unique_lock lock(mutex_);
    for (size_t i = 0; i < keys.size(); ++i) {
      // One search per key: a new key is inserted where the search ended.
      const auto [it, found] = locate(keys[i]);
      switch (mode) {
        case PutMode::Overwrite:
          if (found) {
            it->second.assign(values[i]);
          } else {
            insert_at(it, keys[i], values[i]);
          }
          break;
        case PutMode::NewOnly:
          if (found) {
            applied[i] = false;
          } else {
            insert_at(it, keys[i], values[i]);
          }
          break;
        case PutMode::ExistOnly:
          if (found) {
            it->second.assign(values[i]);
          } else {
            applied[i] = false;
          }
          break;
        case PutMode::Append:
          if (found) {
            it->second.append(values[i]);
          } else {
            insert_at(it, keys[i], values[i]);
          }
          break;
      }
    }
    return Status::Ok();
  }

  Status get(std::span<const std::string_view> keys, bool consume, ValueVisitor visit) override {
    if (consume) {
      std::unique_lock lock(mutex_);
      for (size_t i = 0; i < keys.size(); ++i) {
        auto it = data_.find(keys[i]);
        if (it == data_.end()) continue;
        visit(i, it->second);
        data_.erase(it);
      }
    } else {
      std::shared_lock lock(mutex_);
      for (size_t i = 0; i < keys.size(); ++i) {
        auto it = data_.find(keys[i]);
        if (it != data_.end()) visit(i, it->second);
      }
    }
    return Status::Ok();
  }

  Status length(std::span<const std::string_view> keys, std::span<size_t> sizes) override {
    std::shared_lock lock(mutex_);
    for (size_t i = 0; i < keys.size(); ++i) {
      auto it = data_.find(keys[i]);
      sizes[i] = it == data_.end() ? kNotFound : it->second.size();
    }
    return Status::Ok();
  }

  Status erase(std::span<const std::string_view> keys) override {
    std::unique_lock lock(mutex_);
    for (std::string_view key : keys) {
      auto it = data_.find(key);
      if (it != data_.end()) data_.erase(it);
    }
    return Status::Ok();
  }

  Status list(const ListQuery& query, EntryVisitor visit) override {
    if constexpr (!kOrdered) {
      (void)query;
      (void)visit;
      return Status::Fail(ErrorCode::Unsupported,
                          "backend " + std::string(type()) +
                              " keeps no key order, so it cannot list keys; use \"map\" for an "
                              "in-memory database that lists");
    } else {
      std::shared_lock lock(mutex_);
      std::string_view from = std::max(query.start, query.prefix);
      auto it = data_.lower_bound(from);
      if (!query.inclusive && it != data_.end() && it->first == query.start) ++it;
      for (; it != data_.end(); ++it) {
        if (!std::string_view(it->first).starts_with(query.prefix)) break;
        if (!visit(it->first,
                   query.with_values ? std::string_view(it->second) : std::string_view()))
          break;
      }
      return Status::Ok();
    }
  }

  Status count(uint64_t& count) override {
    std::shared_lock lock(mutex_);
    count = data_.size();
    return Status::Ok();
  }

 private:
  using Iterator = typename Container::iterator;

  // Where `key` is (found) or, in an ordered container, the first entry after it: the hint that
  // makes its insertion cost no second search.
  std::pair<Iterator, bool> locate(std::string_view key) {
    if constexpr (kOrdered) {
      auto it = data_.lower_bound(key);
      return {it, it != data_.end() && it->first == key};
    } else {
      auto it = data_.find(key);
      return {it, it != data_.end()};
    }
  }

  // Inserts a key known to be absent, at `hint` from locate().
  void insert_at(Iterator hint, std::string_view key, std::string_view value) {
    if constexpr (kOrdered) {
      data_.emplace_hint(hint, std::piecewise_construct, std::forward_as_tuple(key),
                         std::forward_as_tuple(value));
    } else {
      (void)hint;
      data_.emplace(std::piecewise_construct, std::forward_as_tuple(key),
                    std::forward_as_tuple(value));
    }
  }

  mutable std::shared_mutex mutex_;
  Container data_;
};

}  // namespace dango::kv
