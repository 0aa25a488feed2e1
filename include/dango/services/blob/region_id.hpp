#pragma once
// RegionId: names one region of a target. Opaque to users, serializable (it travels in RPCs and
// may be stored elsewhere, e.g. in a key/value database), and valid across restarts of a
// persistent target: a target never hands out the same id twice, even after an erase.

#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace dango::blob {

class RegionId {
 public:
  RegionId() = default;  // the invalid id; no region has it
  bool valid() const { return value_ != 0; }
  auto operator<=>(const RegionId&) const = default;

  // A printable form ("r-1f"), and back; nullopt for a string that is not one.
  std::string to_string() const;
  static std::optional<RegionId> from_string(std::string_view text);

  // For backends: the 64-bit number behind the id.
  static RegionId from_number(uint64_t value) {
    RegionId id;
    id.value_ = value;
    return id;
  }
  uint64_t number() const { return value_; }

  template <class Archive>
  void serialize(Archive& ar) {
    ar(value_);
  }

 private:
  uint64_t value_ = 0;
};

}  // namespace dango::blob

template <>
struct std::hash<dango::blob::RegionId> {
  size_t operator()(const dango::blob::RegionId& id) const noexcept {
    return std::hash<uint64_t>{}(id.number());
  }
};
