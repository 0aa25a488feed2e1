#pragma once
// The exceptions of Dango's C++ API. Every error a user can catch derives from dango::Error and
// carries a message that names the thing it is about (address, RPC, provider, config key).

#include <stdexcept>
#include <string>

namespace dango {

// Base of every exception thrown by Dango.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A handler on a remote process threw, or the remote process rejected the request (unknown
// RPC or provider, malformed message). what() is the remote message prefixed by the address.
class RemoteError : public Error {
 public:
  using Error::Error;
};

// An operation did not complete before its deadline.
class TimeoutError : public Error {
 public:
  using Error::Error;
};

// A configuration (JSON or options struct) is invalid; the message names the key path.
class ConfigError : public Error {
 public:
  using Error::Error;
};

// A transport-level failure: a peer cannot be reached, a connection was lost, an address is
// malformed.
class NetworkError : public Error {
 public:
  using Error::Error;
};

// The runtime (thread runtime or engine) is shutting down or finalized: blocked ULTs are woken
// with this error, and calls issued after finalize fail with it.
class ShutdownError : public Error {
 public:
  using Error::Error;
};

}  // namespace dango
