// Locking and conditional rewriting of the group file (see file_lock.hpp).

#include "file_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "dango/common/error.hpp"
#include "dango/thread/ult.hpp"

namespace dango::group::detail {

FileLock::FileLock(const std::filesystem::path& group_file, std::chrono::milliseconds timeout) {
  const std::string path = group_file.string() + ".lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error("group file lock " + path + ": cannot open: " + std::strerror(errno));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if ((err != EWOULDBLOCK && err != EINTR) || std::chrono::steady_clock::now() > deadline) {
      ::close(fd_);
      throw Error("group file lock " + path + ": " +
                  (err == EWOULDBLOCK ? std::string("still held by another process after ") +
                                            std::to_string(timeout.count()) + " ms"
                                      : std::string(std::strerror(err))));
    }
    thread::this_ult::sleep_for(std::chrono::milliseconds(2));
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

bool publish_if_newer(const std::filesystem::path& group_file, const Membership& view,
                      std::chrono::milliseconds lock_timeout) {
  const FileLock lock(group_file, lock_timeout);
  std::error_code ignored;
  if (std::filesystem::exists(group_file, ignored)) {
    try {
      const Membership existing = Membership::load_file(group_file);
      if (existing.name == view.name && existing.version >= view.version) return false;
    } catch (const ConfigError&) {
      // unreadable: replace it
    }
  }
  view.save_file(group_file);
  return true;
}

}  // namespace dango::group::detail
