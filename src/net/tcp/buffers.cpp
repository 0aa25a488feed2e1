#include "net/tcp/buffers.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace dango::net::tcp {
namespace {
// An owned arena grown by one huge queued message is released once drained.
constexpr size_t kMaxRetainedOwned = size_t{4} << 20;
}  // namespace

ssize_t send_iov(int fd, const iovec* iov, size_t count) {
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(iov);
  msg.msg_iovlen = count;
  ssize_t n;
  do {
    n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n;
}

size_t gather_range(std::span<const std::span<std::byte>> segments, size_t offset, size_t length,
                    std::vector<iovec>& out, size_t max_entries) {
  size_t covered = 0;
  size_t added = 0;
  for (const auto& seg : segments) {
    if (covered == length || added == max_entries) break;
    if (offset >= seg.size()) {
      offset -= seg.size();
      continue;
    }
    size_t n = std::min(seg.size() - offset, length - covered);
    out.push_back({seg.data() + offset, n});
    covered += n;
    offset = 0;
    ++added;
  }
  return covered;
}

void OutputQueue::append(std::span<const iovec> iov, size_t copied, size_t skip) {
  for (size_t i = 0; i < iov.size(); ++i) {
    const auto* base = static_cast<const std::byte*>(iov[i].iov_base);
    size_t length = iov[i].iov_len;
    if (skip >= length) {
      skip -= length;
      continue;
    }
    base += skip;
    length -= skip;
    skip = 0;
    if (i < copied) {
      // Adjacent copies share one piece, so a burst of small messages is one iovec entry.
      if (!empty() && pieces_.back().borrowed == nullptr &&
          pieces_.back().offset + pieces_.back().length == owned_.size()) {
        pieces_.back().length += length;
      } else {
        pieces_.push_back({nullptr, owned_.size(), length});
      }
      owned_.insert(owned_.end(), base, base + length);
    } else {
      pieces_.push_back({base, 0, length});
    }
  }
}

OutputQueue::FlushResult OutputQueue::flush(int fd) {
  while (!empty()) {
    iovec iov[kMaxIovPerCall];
    size_t count = 0;
    size_t bytes = 0;
    for (size_t i = head_; i < pieces_.size() && count < kMaxIovPerCall; ++i, ++count) {
      const Piece& p = pieces_[i];
      iov[count].iov_base =
          const_cast<std::byte*>(p.borrowed ? p.borrowed : owned_.data() + p.offset);
      iov[count].iov_len = p.length;
      bytes += p.length;
    }
    ssize_t n = send_iov(fd, iov, count);
    if (n < 0) {
      return (errno == EAGAIN || errno == EWOULDBLOCK) ? FlushResult::kWouldBlock
                                                       : FlushResult::kError;
    }
    consume(static_cast<size_t>(n));
    // A short write means the socket buffer is full: another call would only return EAGAIN.
    if (static_cast<size_t>(n) < bytes) {
      compact();
      return FlushResult::kWouldBlock;
    }
  }
  clear();
  return FlushResult::kDrained;
}

void OutputQueue::consume(size_t bytes) {
  while (bytes > 0) {
    Piece& p = pieces_[head_];
    size_t n = std::min(bytes, p.length);
    if (p.borrowed) {
      p.borrowed += n;
    } else {
      p.offset += n;
    }
    p.length -= n;
    bytes -= n;
    if (p.length == 0) ++head_;
  }
}

void OutputQueue::compact() {
  // Keeps a connection that never fully drains from growing its queue without bound.
  if (head_ > 64 && head_ * 2 > pieces_.size()) {
    pieces_.erase(pieces_.begin(), pieces_.begin() + static_cast<ptrdiff_t>(head_));
    head_ = 0;
  }
  size_t first_owned = owned_.size();
  for (size_t i = head_; i < pieces_.size(); ++i) {
    if (!pieces_[i].borrowed) {
      first_owned = pieces_[i].offset;
      break;
    }
  }
  if (first_owned > (size_t{1} << 20) && first_owned * 2 > owned_.size()) {
    owned_.erase(owned_.begin(), owned_.begin() + static_cast<ptrdiff_t>(first_owned));
    for (size_t i = head_; i < pieces_.size(); ++i) {
      if (!pieces_[i].borrowed) pieces_[i].offset -= first_owned;
    }
  }
}

void OutputQueue::clear() {
  pieces_.clear();
  head_ = 0;
  owned_.clear();
  if (owned_.capacity() > kMaxRetainedOwned) std::vector<std::byte>().swap(owned_);
}

InputBuffer::InputBuffer() { reallocate(kDefaultCapacity); }

std::span<std::byte> InputBuffer::free_space() {
  if (begin_ > 0 && capacity_ - end_ < capacity_ / 4) {
    std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  return {data_.get() + end_, capacity_ - end_};
}

void InputBuffer::consume(size_t n) {
  begin_ += n;
  if (begin_ == end_) begin_ = end_ = 0;
}

void InputBuffer::ensure_fits(size_t frame_size) {
  if (begin_ + frame_size <= capacity_) return;
  if (frame_size <= capacity_) {
    std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
    return;
  }
  reallocate(frame_size);
}

void InputBuffer::shrink_if_idle() {
  if (begin_ == end_ && capacity_ > kMaxRetainedCapacity) reallocate(kDefaultCapacity);
}

void InputBuffer::reallocate(size_t capacity) {
  // make_unique_for_overwrite: a 64 MiB frame buffer need not be zeroed before being read into.
  auto fresh = std::make_unique_for_overwrite<std::byte[]>(capacity);
  size_t used = end_ - begin_;
  if (used > 0) std::memcpy(fresh.get(), data_.get() + begin_, used);
  data_ = std::move(fresh);
  capacity_ = capacity;
  begin_ = 0;
  end_ = used;
}

}  // namespace dango::net::tcp
