// The psync IoEngine (see io_engine.hpp), and the choice between engines.

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "dango/common/log.hpp"
#include "dango/services/blob/errors.hpp"
#include "services/blob/io_engine.hpp"

namespace dango::blob {
namespace {

class PsyncEngine final : public IoEngine {
 public:
  std::string_view name() const override { return "psync"; }

  int write(int fd, std::span<const std::byte> data, uint64_t offset) override {
    while (!data.empty()) {
      const ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno;
      if (n == 0) return EIO;
      data = data.subspan(static_cast<size_t>(n));
      offset += static_cast<uint64_t>(n);
    }
    return 0;
  }

  int read(int fd, std::span<std::byte> out, uint64_t offset) override {
    while (!out.empty()) {
      const ssize_t n = ::pread(fd, out.data(), out.size(), static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno;
      if (n == 0) return EIO;  // past the end of the file
      out = out.subspan(static_cast<size_t>(n));
      offset += static_cast<uint64_t>(n);
    }
    return 0;
  }

  int sync(int fd, uint64_t, uint64_t) override { return ::fdatasync(fd) == 0 ? 0 : errno; }
  int start_writeback(int fd, uint64_t offset, uint64_t size) override {
    return ::sync_file_range(fd, static_cast<off_t>(offset), static_cast<off_t>(size),
                             SYNC_FILE_RANGE_WRITE) == 0
               ? 0
               : errno;
  }
};

}  // namespace

std::unique_ptr<IoEngine> make_psync_engine() { return std::make_unique<PsyncEngine>(); }

std::unique_ptr<IoEngine> make_io_engine(IoEngineKind kind, unsigned queue_depth) {
  if (kind == IoEngineKind::kPsync) return make_psync_engine();
  int error = 0;
  if (auto engine = make_uring_engine(queue_depth, error)) return engine;
  if (kind == IoEngineKind::kIoUring) {
    throw Error(ErrorCode::kIoError,
                std::string("cannot set up io_uring: ") + std::strerror(error));
  }
  log::get("blob")->info("io_uring unavailable ({}); file targets use pread/pwrite",
                         std::strerror(error));
  return make_psync_engine();
}

}  // namespace dango::blob
