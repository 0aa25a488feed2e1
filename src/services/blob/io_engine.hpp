#pragma once
// IoEngine: how a file target moves bytes between memory and its file. Two engines:
//   io_uring  submits each operation to a ring (liburing) and yields the calling ULT until it
//             completes, so the execution stream keeps running other ULTs (the network side of
//             a pipelined transfer) while the disk works;
//   psync     plain pwrite/pread/fdatasync, blocking the execution stream: the fallback where
//             io_uring is not allowed (old kernels, seccomp profiles of containers).
// Every call moves its whole range (short transfers are resumed) or fails. One engine serves every
// file of a target (its data files and its journal): each call names the open file.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace dango::blob {

class IoEngine {
 public:
  virtual ~IoEngine() = default;
  // "io_uring" or "psync".
  virtual std::string_view name() const = 0;
  // Writes all of `data` at `offset` of the open file `fd`; 0, or the errno of the failure.
  virtual int write(int fd, std::span<const std::byte> data, uint64_t offset) = 0;
  // Reads all of `out` from `offset`; 0, or an errno (EIO for a read past the end of the file).
  virtual int read(int fd, std::span<std::byte> out, uint64_t offset) = 0;
  // fdatasync of [offset, offset + size) (the kernel may sync more; size 0: the whole file);
  // 0, or an errno.
  virtual int sync(int fd, uint64_t offset, uint64_t size) = 0;
  // Starts the writeback of [offset, offset + size) (sync_file_range WRITE: the device's write is
  // not awaited, nor is anything made durable); 0, or an errno.
  virtual int start_writeback(int fd, uint64_t offset, uint64_t size) = 0;
};

enum class IoEngineKind : uint8_t {
  kAuto,     // io_uring when the kernel allows it, psync otherwise
  kIoUring,  // io_uring or fail
  kPsync,
};

// An engine for the files of one target (which the caller keeps open while it uses them).
// `queue_depth`: io_uring submission-queue entries. Throws blob::Error(kIoError) when kIoUring
// is asked for and cannot be set up.
std::unique_ptr<IoEngine> make_io_engine(IoEngineKind kind, unsigned queue_depth);

// The engines themselves (io_uring_engine.cpp, psync_engine.cpp). make_uring_engine returns
// nullptr and sets `error` (an errno) when the ring cannot be set up.
std::unique_ptr<IoEngine> make_uring_engine(unsigned queue_depth, int& error);
std::unique_ptr<IoEngine> make_psync_engine();

}  // namespace dango::blob
