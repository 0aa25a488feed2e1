#pragma once
// Operating-system pieces of the sm transport: owned descriptors, shared mappings of memfd
// segments, and the runtime directory where listening sockets live.
//
// Runtime directory: $DANGO_SM_DIR, else /tmp/dango-sm-<uid> (created 0700, must be ours). A
// transport listening as sm://<name> holds <dir>/<name>.lock (flock'ed for its whole life, with
// its pid inside) and listens on the Unix socket <dir>/<name>.sock. Both are removed by close();
// a process that was killed leaves them behind, and since the kernel drops its flock, any later
// sm transport finds the lock file unlocked and removes both (clean_stale_names). Segments are
// memfds, passed over the sockets: they have no name and vanish with the last process using them.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "common/unique_fd.hpp"

namespace dango::net::sm {

using Fd = ::dango::UniqueFd;

// A shared read-write mapping, unmapped on destruction.
class Mapping {
 public:
  Mapping() = default;
  ~Mapping() { reset(); }
  Mapping(Mapping&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  Mapping& operator=(Mapping&& other) noexcept {
    if (this != &other) {
      reset();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  // Maps `size` bytes of `fd` shared; throws dango::NetworkError naming `what`.
  static Mapping map(int fd, size_t size, std::string_view what);
  std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<std::byte> bytes() const { return {data_, size_}; }
  void reset();

 private:
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

// A new memfd of `size` zeroed bytes; throws dango::NetworkError naming `what`.
Fd create_segment(std::string_view what, size_t size);
// The size of the file behind `fd`, or -1.
int64_t segment_size(int fd);

// The runtime directory (see the file comment), created if missing; throws dango::NetworkError
// when it cannot be created or is not a directory owned by this user.
std::string runtime_directory();

// Removes the socket and lock files of names whose owner died; returns how many it removed.
size_t clean_stale_names(const std::string& directory);

// The exclusive claim on a name in the runtime directory: the flock'ed lock file.
class NameLock {
 public:
  NameLock() = default;
  // Claims `name`; throws dango::NetworkError when a live process holds it.
  NameLock(const std::string& directory, const std::string& name);
  ~NameLock() { release(); }
  NameLock(NameLock&&) = delete;
  NameLock& operator=(NameLock&&) = delete;
  // Removes the socket and lock files and drops the claim. Idempotent.
  void release();
  const std::string& socket_path() const { return socket_path_; }

 private:
  Fd lock_;
  std::string lock_path_;
  std::string socket_path_;
};

// Socket path of `name` in `directory`.
std::string socket_path(const std::string& directory, std::string_view name);
// True when `name` may be used in an sm address: 1-64 characters of [A-Za-z0-9._-], not
// starting with a dot.
bool valid_name(std::string_view name);

}  // namespace dango::net::sm
