// Names of the key/value error codes.

#include "dango/services/kv/errors.hpp"

namespace dango::kv {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::Ok:
      return "Ok";
    case ErrorCode::InvalidArgument:
      return "InvalidArgument";
    case ErrorCode::SizeLimit:
      return "SizeLimit";
    case ErrorCode::KeyExists:
      return "KeyExists";
    case ErrorCode::KeyNotFound:
      return "KeyNotFound";
    case ErrorCode::BufferTooSmall:
      return "BufferTooSmall";
    case ErrorCode::Unsupported:
      return "Unsupported";
    case ErrorCode::UnknownDatabase:
      return "UnknownDatabase";
    case ErrorCode::DatabaseExists:
      return "DatabaseExists";
    case ErrorCode::UnknownBackend:
      return "UnknownBackend";
    case ErrorCode::IoError:
      return "IoError";
    case ErrorCode::Corruption:
      return "Corruption";
    case ErrorCode::Internal:
      return "Internal";
  }
  return "Unknown";
}

}  // namespace dango::kv
