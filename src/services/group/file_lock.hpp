#pragma once
// An exclusive lock on the group file's companion "<file>.lock" (flock), taken without blocking
// the OS thread: a member agent's execution stream also serves the RPCs that another process
// holding the lock may be waiting for, so a blocking flock could stall both until a timeout.

#include <chrono>
#include <filesystem>

#include "dango/services/group/membership.hpp"

namespace dango::group::detail {

class FileLock {
 public:
  // Locks `group_file` + ".lock" (created if absent), retrying every few milliseconds (the ULT
  // sleeps) until `timeout`. Throws dango::Error naming the file on timeout or I/O error.
  FileLock(const std::filesystem::path& group_file, std::chrono::milliseconds timeout);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// Under the lock: writes `view` to `group_file` unless the file already holds a view of the
// same group with a version at least as high. Returns true when it wrote.
bool publish_if_newer(const std::filesystem::path& group_file, const Membership& view,
                      std::chrono::milliseconds lock_timeout);

}  // namespace dango::group::detail
