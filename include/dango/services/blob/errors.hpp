#pragma once
// The errors of the blob service. Every failure a caller can see is a dango::blob::Error carrying
// an ErrorCode and a message naming the target, region or setting involved; transport failures
// stay dango::NetworkError / TimeoutError.

#include <cstdint>
#include <string>
#include <string_view>

#include "dango/common/error.hpp"

namespace dango::blob {

// What went wrong. Stable numbers: they travel in replies.
enum class ErrorCode : uint8_t {
  kOk = 0,
  kInvalidArgument,    // a malformed request (empty region, bulk smaller than the size asked)
  kOutOfRange,         // a read or write past the end of a region
  kUnknownRegion,      // no region with that id in the target (never created, or erased)
  kUnknownTarget,      // no target by that name at the provider
  kTargetExists,       // creating a target whose name is taken
  kUnknownTargetType,  // no target type registered under that name
  kNoSpace,            // the target has no free extent large enough
  kIoError,            // the storage failed: a path that cannot be opened, a failed write
  kCorruption,         // the target's files are damaged (bad header, overlapping extents)
  kTransferFailed,     // moving the data to or from the caller's memory failed
  kInternal,           // a bug or an unexpected condition; the message says more
};

// "OutOfRange", "NoSpace", ...
std::string_view to_string(ErrorCode code);

// A blob operation failed; code() says how, what() names the thing.
class Error : public dango::Error {
 public:
  Error(ErrorCode code, const std::string& message) : dango::Error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace dango::blob
