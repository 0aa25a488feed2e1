// Names of the blob error codes, and the printable form of region ids.

#include "dango/services/blob/errors.hpp"

#include <charconv>

#include "dango/services/blob/region_id.hpp"

namespace dango::blob {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk:
      return "Ok";
    case ErrorCode::kInvalidArgument:
      return "InvalidArgument";
    case ErrorCode::kOutOfRange:
      return "OutOfRange";
    case ErrorCode::kUnknownRegion:
      return "UnknownRegion";
    case ErrorCode::kUnknownTarget:
      return "UnknownTarget";
    case ErrorCode::kTargetExists:
      return "TargetExists";
    case ErrorCode::kUnknownTargetType:
      return "UnknownTargetType";
    case ErrorCode::kNoSpace:
      return "NoSpace";
    case ErrorCode::kIoError:
      return "IoError";
    case ErrorCode::kCorruption:
      return "Corruption";
    case ErrorCode::kTransferFailed:
      return "TransferFailed";
    case ErrorCode::kInternal:
      return "Internal";
  }
  return "Unknown";
}

std::string RegionId::to_string() const {
  char digits[17];
  auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), value_, 16);
  (void)ec;
  return "r-" + std::string(digits, end);
}

std::optional<RegionId> RegionId::from_string(std::string_view text) {
  if (text.size() < 3 || text.substr(0, 2) != "r-") return std::nullopt;
  uint64_t value = 0;
  const char* begin = text.data() + 2;
  const char* end = text.data() + text.size();
  auto [last, ec] = std::from_chars(begin, end, value, 16);
  if (ec != std::errc() || last != end || value == 0) return std::nullopt;
  return from_number(value);
}

}  // namespace dango::blob
