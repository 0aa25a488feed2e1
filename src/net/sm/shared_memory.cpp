// Owned descriptors, memfd segments and the runtime directory of the sm transport.

#include "net/sm/shared_memory.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "dango/common/error.hpp"

namespace dango::net::sm {
namespace {

std::string errno_text() { return std::strerror(errno); }

constexpr std::string_view kLockSuffix = ".lock";
constexpr std::string_view kSocketSuffix = ".sock";

}  // namespace

Mapping Mapping::map(int fd, size_t size, std::string_view what) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    throw NetworkError("sm: cannot map " + std::string(what) + " (" + std::to_string(size) +
                       " bytes): " + errno_text());
  }
  Mapping m;
  m.data_ = static_cast<std::byte*>(p);
  m.size_ = size;
  return m;
}

void Mapping::reset() {
  if (data_ != nullptr) ::munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

Fd create_segment(std::string_view what, size_t size) {
  Fd fd(::memfd_create(std::string("dango-sm-").append(what).c_str(), MFD_CLOEXEC));
  if (!fd) throw NetworkError("sm: cannot create " + std::string(what) + ": " + errno_text());
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    throw NetworkError("sm: cannot size " + std::string(what) + " to " + std::to_string(size) +
                       " bytes: " + errno_text());
  }
  return fd;
}

int64_t segment_size(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return -1;
  return st.st_size;
}

std::string runtime_directory() {
  const char* env = std::getenv("DANGO_SM_DIR");
  std::string dir = env != nullptr && *env != '\0' ? std::string(env)
                                                   : "/tmp/dango-sm-" + std::to_string(::getuid());
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    throw NetworkError("sm: cannot create runtime directory " + dir + ": " + errno_text());
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::getuid()) {
    throw NetworkError("sm: runtime directory " + dir +
                       " is not a directory owned by this user (set DANGO_SM_DIR)");
  }
  return dir;
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '.') return false;
  for (char ch : name) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

std::string socket_path(const std::string& directory, std::string_view name) {
  return directory + "/" + std::string(name) + std::string(kSocketSuffix);
}

size_t clean_stale_names(const std::string& directory) {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(directory.c_str()), ::closedir);
  if (!dir) return 0;
  std::vector<std::string> names;
  while (dirent* entry = ::readdir(dir.get())) {
    std::string_view file = entry->d_name;
    if (file.size() > kLockSuffix.size() && file.ends_with(kLockSuffix)) {
      names.emplace_back(file.substr(0, file.size() - kLockSuffix.size()));
    }
  }
  size_t removed = 0;
  for (const auto& name : names) {
    std::string lock_path = directory + "/" + name + std::string(kLockSuffix);
    Fd fd(::open(lock_path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
    if (!fd || ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) continue;  // alive (or gone)
    // Still the file at that path? A racing cleaner may have replaced it.
    struct stat held {
    }, current{};
    if (::fstat(fd.get(), &held) != 0 || ::stat(lock_path.c_str(), &current) != 0 ||
        held.st_ino != current.st_ino) {
      continue;
    }
    // The socket goes first: a new owner can only create a lock file once this one is gone.
    ::unlink(socket_path(directory, name).c_str());
    ::unlink(lock_path.c_str());
    ++removed;
  }
  return removed;
}

NameLock::NameLock(const std::string& directory, const std::string& name)
    : lock_path_(directory + "/" + name + std::string(kLockSuffix)),
      socket_path_(sm::socket_path(directory, name)) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    Fd fd(::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) throw NetworkError("sm: cannot create " + lock_path_ + ": " + errno_text());
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      char pid[32] = {};
      [[maybe_unused]] auto n = ::pread(fd.get(), pid, sizeof pid - 1, 0);
      if (n > 0 && ::kill(std::atoi(pid), 0) == 0) {
        throw NetworkError("sm://" + name + " is in use by process " + pid);
      }
      ::usleep(1000);  // a cleaner holds the lock of a dead owner for a moment
      continue;
    }
    struct stat held {
    }, current{};
    if (::fstat(fd.get(), &held) != 0 || ::stat(lock_path_.c_str(), &current) != 0 ||
        held.st_ino != current.st_ino) {
      continue;  // removed by a cleaner between open and flock: claim the new file
    }
    std::string text = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd.get(), 0) != 0 || ::pwrite(fd.get(), text.data(), text.size(), 0) < 0) {
      throw NetworkError("sm: cannot write " + lock_path_ + ": " + errno_text());
    }
    ::unlink(socket_path_.c_str());  // left by a previous owner of the name
    lock_ = std::move(fd);
    return;
  }
  throw NetworkError("sm://" + name + " is in use (lock " + lock_path_ + " busy)");
}

void NameLock::release() {
  if (!lock_) return;
  ::unlink(socket_path_.c_str());
  ::unlink(lock_path_.c_str());
  lock_.reset();
}

}  // namespace dango::net::sm
