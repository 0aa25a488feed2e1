#pragma once
// The two per-connection buffers of the tcp transport. Both are reused for the life of the
// connection so that the message hot path does not allocate.

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace dango::net::tcp {

// Writes an iovec array with sendmsg(MSG_NOSIGNAL): a peer that vanished must give EPIPE, not
// a SIGPIPE that kills the process. Returns bytes written or -1 (errno set).
ssize_t send_iov(int fd, const iovec* iov, size_t count);

// Entries per sendmsg/readv: enough to batch many small frames, far below IOV_MAX.
inline constexpr size_t kMaxIovPerCall = 64;

// Appends to `out` (at most `max_entries` entries) iovecs covering `length` bytes at `offset`
// of the concatenation of `segments`. Returns the bytes covered (less than `length` only when
// `max_entries` ran out).
size_t gather_range(std::span<const std::span<std::byte>> segments, size_t offset, size_t length,
                    std::vector<iovec>& out, size_t max_entries = SIZE_MAX);

// Bytes waiting to be written to one socket, in order. Pieces are either copied into an owned
// arena (message bytes the caller may reuse at once) or borrowed (bulk payloads pointing into
// registered memory, which stays valid until the operation completes), so bulk data is never
// copied. Several queued frames leave in one sendmsg.
class OutputQueue {
 public:
  enum class FlushResult { kDrained, kWouldBlock, kError };

  bool empty() const { return head_ == pieces_.size(); }
  // Appends `iov` except its first `skip` bytes (already written). The first `copied` entries are
  // copied; the others are borrowed.
  void append(std::span<const iovec> iov, size_t copied, size_t skip);
  // Writes as much as the socket takes. kError leaves errno set.
  FlushResult flush(int fd);
  void clear();

 private:
  struct Piece {
    const std::byte* borrowed;  // nullptr: the bytes are in owned_ at `offset`
    size_t offset;
    size_t length;
  };
  void consume(size_t bytes);
  void compact();

  std::vector<Piece> pieces_;
  size_t head_ = 0;  // first piece not fully written
  std::vector<std::byte> owned_;
};

// Bytes read from one socket and not yet consumed. Frames are parsed in place: a message handed
// to the user is a span into this buffer. A frame larger than the buffer grows it to fit; the
// grown buffer is given back once idle if it is unusually large.
class InputBuffer {
 public:
  static constexpr size_t kDefaultCapacity = size_t{64} << 10;

  InputBuffer();
  std::byte* data() { return data_.get() + begin_; }
  size_t size() const { return end_ - begin_; }
  size_t capacity() const { return capacity_; }
  // Room to read into; compacts first when the tail is short.
  std::span<std::byte> free_space();
  void commit(size_t n) { end_ += n; }
  void consume(size_t n);
  // Makes a frame of `frame_size` bytes starting at data() fit in the buffer.
  void ensure_fits(size_t frame_size);
  // Returns to the default capacity when empty and grown beyond kMaxRetainedCapacity.
  void shrink_if_idle();

 private:
  static constexpr size_t kMaxRetainedCapacity = size_t{4} << 20;
  void reallocate(size_t capacity);

  std::unique_ptr<std::byte[]> data_;
  size_t capacity_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace dango::net::tcp
