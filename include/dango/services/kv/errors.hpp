#pragma once
// The errors of the key/value service. Every failure a caller can see is a dango::kv::Error
// carrying an ErrorCode and a message naming the database, key or setting involved. A missing
// key is not an error (get returns an empty optional); transport failures stay
// dango::NetworkError / TimeoutError.

#include <cstdint>
#include <string>
#include <string_view>

#include "dango/common/error.hpp"

namespace dango::kv {

// What went wrong. Stable numbers: they travel in replies.
enum class ErrorCode : uint8_t {
  Ok = 0,
  InvalidArgument,  // empty key, mismatched batch sizes, malformed request
  SizeLimit,        // a key or value over the provider's limits (or the backend's)
  KeyExists,        // PutMode::NewOnly on a key that exists
  KeyNotFound,      // PutMode::ExistOnly on a key that does not exist
  BufferTooSmall,   // the caller's buffer cannot hold the values asked for
  Unsupported,      // the backend cannot do this (e.g. ordered listing on unordered_map)
  UnknownDatabase,  // no database by that name or handle at the provider
  DatabaseExists,   // creating a database whose name (or data) already exists
  UnknownBackend,   // no backend registered under that type name
  IoError,          // the store's disk failed: read-only path, disk full, missing files
  Corruption,       // the store's files are damaged
  Internal,         // a bug or an unexpected backend condition; the message says more
};

// "KeyExists", "IoError", ...
std::string_view to_string(ErrorCode code);

// A key/value operation failed; code() says how, what() names the thing.
class Error : public dango::Error {
 public:
  Error(ErrorCode code, const std::string& message) : dango::Error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace dango::kv
