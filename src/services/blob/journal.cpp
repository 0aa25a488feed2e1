// The layout journal of a file target (see journal.hpp).

#include "services/blob/journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/crc.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "dango/services/blob/errors.hpp"

namespace dango::blob {
namespace {

constexpr char kMagic[8] = {'D', 'A', 'N', 'G', 'O', 'J', 'N', 'L'};
constexpr uint32_t kVersion = 1;

uint32_t crc32(const std::byte* data, size_t size) {
  boost::crc_32_type crc;
  crc.process_bytes(data, size);
  return crc.checksum();
}

void put_u64(std::byte* at, uint64_t value) { std::memcpy(at, &value, 8); }
uint64_t get_u64(const std::byte* at) {
  uint64_t value;
  std::memcpy(&value, at, 8);
  return value;
}

void encode(const JournalRecord& record, std::byte* out) {
  std::memset(out, 0, Journal::kRecordSize);
  out[4] = static_cast<std::byte>(record.kind);
  put_u64(out + 8, record.id);
  put_u64(out + 16, record.offset);
  put_u64(out + 24, record.size);
  const uint32_t crc = crc32(out + 4, Journal::kRecordSize - 4);
  std::memcpy(out, &crc, 4);
}

bool decode(const std::byte* in, JournalRecord& record) {
  uint32_t crc;
  std::memcpy(&crc, in, 4);
  if (crc != crc32(in + 4, Journal::kRecordSize - 4)) return false;
  const auto kind = static_cast<uint8_t>(in[4]);
  if (kind != 1 && kind != 2) return false;
  record.kind = static_cast<JournalRecord::Kind>(kind);
  record.id = get_u64(in + 8);
  record.offset = get_u64(in + 16);
  record.size = get_u64(in + 24);
  return true;
}

[[noreturn]] void io_failure(const std::string& what, const std::string& path, int error) {
  throw Error(ErrorCode::kIoError, what + " " + path + ": " + std::strerror(error));
}

int write_all(int fd, const std::byte* data, size_t size, uint64_t offset) {
  while (size > 0) {
    const ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : EIO;
    data += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return 0;
}

// Writes zeros over [from, to) of `fd`; 0, or an errno.
int write_zeros(int fd, uint64_t from, uint64_t to) {
  static const std::byte zeros[64 << 10] = {};
  while (from < to) {
    const size_t size = static_cast<size_t>(std::min<uint64_t>(sizeof(zeros), to - from));
    if (const int error = write_all(fd, zeros, size, from); error != 0) return error;
    from += size;
  }
  return 0;
}

// The size of a journal file holding `used` bytes of header and records: rounded up to whole
// kGrowth steps, with room for at least one more record.
uint64_t padded_size(uint64_t used) {
  return (used + Journal::kRecordSize + Journal::kGrowth - 1) / Journal::kGrowth * Journal::kGrowth;
}

// A journal file holding the header (and `body`), then zeros to padded_size(), written and
// synced; its fd, or -1 with errno.
int write_new_file(const std::string& path, uint64_t uuid, const std::vector<std::byte>& body) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  std::vector<std::byte> bytes(Journal::kHeaderSize);
  std::memcpy(bytes.data(), kMagic, 8);
  std::memcpy(bytes.data() + 8, &kVersion, 4);
  put_u64(bytes.data() + 16, uuid);
  bytes.insert(bytes.end(), body.begin(), body.end());
  bytes.resize(padded_size(bytes.size()));
  const int error = write_all(fd, bytes.data(), bytes.size(), 0);
  if (error != 0 || ::fdatasync(fd) != 0) {
    const int saved = error != 0 ? error : errno;
    ::close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

}  // namespace

int sync_parent_directory(const std::string& path) {
  const std::string parent = std::filesystem::path(path).parent_path().string();
  const int fd = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  const int result = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  return result;
}

Journal::Journal(std::string path, uint64_t uuid, bool create,
                 const std::function<void(const JournalRecord&)>& replay)
    : path_(std::move(path)), uuid_(uuid) {
  if (create) {
    create_file();
  } else {
    replay_file(uuid, replay);
  }
}

Journal::~Journal() = default;

Journal::OpenFile::~OpenFile() {
  if (fd >= 0) ::close(fd);
}

void Journal::create_file() {
  const int fd = write_new_file(path_, uuid_, {});
  if (fd < 0) io_failure("cannot create the journal", path_, errno);
  file_ = std::make_shared<const OpenFile>(fd);
  file_size_ = padded_size(kHeaderSize);
  if (const int error = sync_parent_directory(path_); error != 0) {
    io_failure("cannot sync the folder of", path_, error);
  }
}

void Journal::replay_file(uint64_t uuid, const std::function<void(const JournalRecord&)>& replay) {
  const int fd = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      throw Error(ErrorCode::kCorruption,
                  "the journal " + path_ + " of an existing target is missing");
    }
    io_failure("cannot open the journal", path_, errno);
  }
  file_ = std::make_shared<const OpenFile>(fd);
  struct stat info {};
  if (::fstat(fd, &info) != 0) io_failure("cannot stat the journal", path_, errno);
  std::vector<std::byte> bytes(static_cast<size_t>(info.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n =
        ::pread(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) io_failure("cannot read the journal", path_, n < 0 ? errno : EIO);
    done += static_cast<size_t>(n);
  }
  uint32_t version = 0;
  if (bytes.size() < kHeaderSize) {
    throw Error(ErrorCode::kCorruption, "the journal " + path_ + " has no header");
  }
  std::memcpy(&version, bytes.data() + 8, 4);
  if (std::memcmp(bytes.data(), kMagic, 8) != 0 || version != kVersion) {
    throw Error(ErrorCode::kCorruption, path_ + " is not a blob target journal (version 1)");
  }
  if (get_u64(bytes.data() + 16) != uuid) {
    throw Error(ErrorCode::kCorruption, "the journal " + path_ + " belongs to another target");
  }
  uint64_t offset = kHeaderSize;
  JournalRecord record;
  while (offset + kRecordSize <= bytes.size() && decode(bytes.data() + offset, record)) {
    replay(record);
    offset += kRecordSize;
    ++records_in_file_;
  }
  end_ = offset;
  file_size_ = bytes.size();
  if (std::any_of(bytes.begin() + static_cast<ptrdiff_t>(offset), bytes.end(),
                  [](std::byte b) { return b != std::byte{0}; })) {
    // A torn or damaged tail: zeroed (durably), so that replay stops where it started even
    // after later appends, which go there, leave part of it behind.
    int error = write_zeros(fd, offset, bytes.size());
    if (error == 0 && ::fdatasync(fd) != 0) error = errno;
    if (error != 0) io_failure("cannot cut the torn tail of the journal", path_, error);
  }
}

int Journal::reserve_record() {
  if (end_ + kRecordSize <= file_size_) return 0;
  // Synced at once: zeros that a crash lost could leave stale bytes where replay looks.
  const uint64_t grown = padded_size(end_);
  int error = write_zeros(file_->fd, file_size_, grown);
  if (error == 0 && ::fdatasync(file_->fd) != 0) error = errno;
  if (error == 0) file_size_ = grown;
  return error;
}

uint64_t Journal::append(const JournalRecord& record, int& error) {
  std::byte bytes[kRecordSize];
  encode(record, bytes);
  std::lock_guard lock(append_mutex_);
  error = reserve_record();
  if (error == 0) error = write_all(file_->fd, bytes, kRecordSize, end_);
  if (error != 0) {
    // A partial record would fail its checksum on replay, and the next append overwrites it.
    return 0;
  }
  end_ += kRecordSize;
  ++records_in_file_;
  return appended_.fetch_add(1) + 1;
}

int Journal::sync_through(uint64_t sequence, const Datasync& datasync) {
  if (synced_.load(std::memory_order_acquire) >= sequence) return 0;
  std::shared_ptr<const OpenFile> file;
  uint64_t covered;
  {
    std::lock_guard lock(append_mutex_);
    file = file_;  // stays open through a concurrent rewrite()
    covered = appended_.load();
  }
  const int error = datasync ? datasync(file->fd) : (::fdatasync(file->fd) == 0 ? 0 : errno);
  if (error != 0) return error;
  uint64_t synced = synced_.load(std::memory_order_acquire);
  while (synced < covered &&
         !synced_.compare_exchange_weak(synced, covered, std::memory_order_acq_rel)) {
  }
  return 0;
}

uint64_t Journal::records_in_file() const {
  std::lock_guard lock(append_mutex_);
  return records_in_file_;
}

int Journal::rewrite(const std::vector<JournalRecord>& live) {
  std::vector<std::byte> body(live.size() * kRecordSize);
  for (size_t i = 0; i < live.size(); ++i) encode(live[i], body.data() + i * kRecordSize);
  std::lock_guard lock(append_mutex_);
  const std::string temporary = path_ + ".tmp";
  const int fd = write_new_file(temporary, uuid_, body);
  if (fd < 0) return errno;
  if (::rename(temporary.c_str(), path_.c_str()) != 0) {
    const int error = errno;
    ::close(fd);
    ::unlink(temporary.c_str());
    return error;
  }
  const int error = sync_parent_directory(path_);
  file_ = std::make_shared<const OpenFile>(fd);
  end_ = kHeaderSize + body.size();
  file_size_ = padded_size(end_);
  records_in_file_ = live.size();
  synced_.store(appended_.load(), std::memory_order_release);
  return error;
}

}  // namespace dango::blob
