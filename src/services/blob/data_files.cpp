// The data files of a file target (see data_files.hpp).

#include "services/blob/data_files.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "dango/services/blob/errors.hpp"
#include "services/blob/aligned_buffer.hpp"
#include "services/blob/journal.hpp"

namespace dango::blob {
namespace {

constexpr uint64_t kBlock = DataFiles::kBlock;
constexpr char kMagic[8] = {'D', 'A', 'N', 'G', 'O', 'B', 'L', 'B'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderFields = 48;  // bytes of the header that carry fields

struct Header {
  uint64_t uuid = 0;
  uint64_t capacity = 0;
  uint64_t file_size = 0;
  uint32_t index = 0;
  uint32_t files = 0;
};

void encode(const Header& header, std::byte* out) {
  std::memset(out, 0, kBlock);
  std::memcpy(out, kMagic, 8);
  std::memcpy(out + 8, &kVersion, 4);
  const uint32_t block = kBlock;
  std::memcpy(out + 12, &block, 4);
  std::memcpy(out + 16, &header.uuid, 8);
  std::memcpy(out + 24, &header.capacity, 8);
  std::memcpy(out + 32, &header.file_size, 8);
  std::memcpy(out + 40, &header.index, 4);
  std::memcpy(out + 44, &header.files, 4);
}

bool decode(const std::byte* in, Header& header) {
  uint32_t version = 0, block = 0;
  std::memcpy(&version, in + 8, 4);
  std::memcpy(&block, in + 12, 4);
  if (std::memcmp(in, kMagic, 8) != 0 || version != kVersion || block != kBlock) return false;
  std::memcpy(&header.uuid, in + 16, 8);
  std::memcpy(&header.capacity, in + 24, 8);
  std::memcpy(&header.file_size, in + 32, 8);
  std::memcpy(&header.index, in + 40, 4);
  std::memcpy(&header.files, in + 44, 4);
  return true;
}

[[noreturn]] void fail(ErrorCode code, const std::string& target, const std::string& what) {
  throw Error(code, "target \"" + target + "\": " + what);
}
[[noreturn]] void fail_io(const std::string& target, const std::string& what, int error) {
  fail(ErrorCode::kIoError, target, what + ": " + std::strerror(error));
}

std::string data_file_path(const DataFilesOptions& options, uint32_t index) {
  if (options.layout == DataLayout::kFile) return options.path;
  char name[32];
  std::snprintf(name, sizeof(name), "data.%05u", index);
  return (std::filesystem::path(options.path) / name).string();
}

uint32_t files_for(uint64_t capacity, uint64_t file_size) {
  return static_cast<uint32_t>((capacity + file_size - 1) / file_size);
}

uint64_t size_of_file(uint64_t capacity, uint64_t file_size, uint32_t index) {
  return std::min(file_size, capacity - index * file_size);
}

// Writes zeros over [from, to) of `fd`, a MiB at a time; 0 or an errno.
int write_zeros(int fd, uint64_t from, uint64_t to) {
  AlignedBuffer zeros(1 << 20, kBlock);
  std::memset(zeros.span().data(), 0, zeros.span().size());
  while (from < to) {
    const size_t size = static_cast<size_t>(std::min<uint64_t>(zeros.span().size(), to - from));
    const ssize_t n = ::pwrite(fd, zeros.span().data(), size, static_cast<off_t>(from));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : EIO;
    from += static_cast<uint64_t>(n);
  }
  return 0;
}

// One data file of `size` bytes after its header, space reserved (zero-filled when asked), header
// durable; 0 or an errno.
int create_file(const std::string& path, uint64_t size, const Header& header, bool exclusive,
                bool zero_fill) {
  const int fd =
      ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : O_TRUNC), 0644);
  if (fd < 0) return errno;
  const uint64_t total = kBlock + size;
  int error = ::posix_fallocate(fd, 0, static_cast<off_t>(total));
  if (error == EOPNOTSUPP || error == EINVAL)
    error = ::ftruncate(fd, static_cast<off_t>(total)) == 0 ? 0 : errno;
  if (error == 0 && zero_fill) error = write_zeros(fd, kBlock, total);
  if (error == 0) {
    AlignedBuffer bytes(kBlock, kBlock);
    encode(header, bytes.span().data());
    if (::pwrite(fd, bytes.span().data(), kBlock, 0) != static_cast<ssize_t>(kBlock)) {
      error = errno != 0 ? errno : EIO;
    }
  }
  if (error == 0 && ::fdatasync(fd) != 0) error = errno;
  ::close(fd);
  return error;
}

// The header of the data file at `path`; throws when it is not one.
Header read_header(const std::string& path, const std::string& target, uint64_t& file_bytes) {
  if (std::filesystem::is_directory(path)) {
    fail(ErrorCode::kIoError, target,
         path + " is a folder (a target of \"layout\": \"directory\"?), not a data file");
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) fail(ErrorCode::kCorruption, target, "data file " + path + " is missing");
    fail_io(target, "cannot open " + path, errno);
  }
  std::byte bytes[kHeaderFields] = {};
  const ssize_t n = ::pread(fd, bytes, sizeof(bytes), 0);
  struct stat info {};
  const bool stat_ok = ::fstat(fd, &info) == 0;
  ::close(fd);
  Header header;
  if (n != static_cast<ssize_t>(sizeof(bytes)) || !stat_ok || !decode(bytes, header)) {
    fail(ErrorCode::kCorruption, target, path + " is not a blob target file (version 1)");
  }
  file_bytes = static_cast<uint64_t>(info.st_size);
  return header;
}

}  // namespace

bool DataFiles::exists(const DataFilesOptions& options) {
  return std::filesystem::exists(data_file_path(options, 0));
}

std::string DataFiles::journal_path(const DataFilesOptions& options) {
  if (options.layout == DataLayout::kFile) return options.path + ".journal";
  return (std::filesystem::path(options.path) / "journal").string();
}

bool DataFiles::prepare(const DataFilesOptions& options, const std::string& target) {
  if (options.layout == DataLayout::kFile) return false;
  if (::mkdir(options.path.c_str(), 0755) == 0) return true;
  const int error = errno;
  if (error != EEXIST) fail_io(target, "cannot create the folder " + options.path, error);
  if (!std::filesystem::is_directory(options.path)) {
    fail(ErrorCode::kIoError, target, options.path + " exists and is not a folder");
  }
  return false;
}

void DataFiles::remove_new_folder(const DataFilesOptions& options) {
  std::error_code ignored;
  std::filesystem::remove(options.path, ignored);  // only when empty
}

std::unique_ptr<DataFiles> DataFiles::create(const DataFilesOptions& options, uint64_t uuid,
                                             const std::string& target) {
  const uint64_t file_size =
      options.layout == DataLayout::kFile ? options.capacity : options.file_size;
  const uint32_t files = files_for(options.capacity, file_size);
  const uint64_t total = options.capacity + uint64_t{files} * kBlock;
  const std::string folder = options.layout == DataLayout::kFile
                                 ? std::filesystem::path(options.path).parent_path().string()
                                 : options.path;
  struct statvfs space {};
  if (::statvfs(folder.empty() ? "." : folder.c_str(), &space) == 0 &&
      uint64_t{space.f_bavail} * space.f_frsize < total) {
    fail_io(target,
            "cannot reserve " + std::to_string(total) + " bytes in " + options.path + " (" +
                std::to_string(uint64_t{space.f_bavail} * space.f_frsize) + " bytes free)",
            ENOSPC);
  }
  std::vector<std::string> made;
  auto undo = [&] {
    for (const std::string& path : made) ::unlink(path.c_str());
  };
  // data.00000 last: its existence says the target exists.
  for (uint32_t index = files; index-- > 0;) {
    const std::string path = data_file_path(options, index);
    if (index == 0 && files > 1) {
      if (const int error = sync_parent_directory(path); error != 0) {
        undo();
        fail_io(target, "cannot sync the folder " + options.path, error);
      }
    }
    const Header header{.uuid = uuid,
                        .capacity = options.capacity,
                        .file_size = file_size,
                        .index = index,
                        .files = files};
    const uint64_t size = size_of_file(options.capacity, file_size, index);
    int error =
        create_file(path, size, header, options.layout == DataLayout::kFile, options.zero_fill);
    if (error == 0) made.push_back(path);
    if (error == 0 && index == 0) error = sync_parent_directory(path);
    if (error != 0) {
      if (error != EEXIST) ::unlink(path.c_str());
      undo();
      fail_io(target, "cannot reserve " + std::to_string(kBlock + size) + " bytes in " + path,
              error);
    }
  }
  auto created = std::make_unique<DataFiles>(Key{}, options, uuid, options.capacity, file_size);
  created->open_fds(target);
  return created;
}

std::unique_ptr<DataFiles> DataFiles::open(const DataFilesOptions& options,
                                           const std::string& target) {
  uint64_t bytes = 0;
  const Header first = read_header(data_file_path(options, 0), target, bytes);
  // A single file made before directories existed: one file of `capacity`.
  const uint64_t file_size = first.file_size == 0 ? first.capacity : first.file_size;
  const uint32_t files = first.files == 0 ? 1 : first.files;
  if (first.capacity == 0 || file_size % kBlock != 0 || first.index != 0 ||
      files != files_for(first.capacity, file_size) ||
      (options.layout == DataLayout::kFile && files != 1)) {
    fail(ErrorCode::kCorruption, target,
         data_file_path(options, 0) + " has a damaged header (capacity, file size or count)");
  }
  for (uint32_t index = 0; index < files; ++index) {
    const std::string path = data_file_path(options, index);
    const Header header = index == 0 ? first : read_header(path, target, bytes);
    const uint64_t size = size_of_file(first.capacity, file_size, index);
    if (index > 0 &&
        (header.uuid != first.uuid || header.index != index || header.capacity != first.capacity ||
         header.file_size != file_size || header.files != files)) {
      fail(ErrorCode::kCorruption, target,
           path + " belongs to another target, or is not data file " + std::to_string(index));
    }
    if (bytes < kBlock + size) {
      fail(ErrorCode::kCorruption, target, path + " is shorter than its capacity");
    }
  }
  auto opened = std::make_unique<DataFiles>(Key{}, options, first.uuid, first.capacity, file_size);
  opened->open_fds(target);
  return opened;
}

DataFiles::DataFiles(Key, DataFilesOptions options, uint64_t uuid, uint64_t capacity,
                     uint64_t file_size)
    : options_(std::move(options)), uuid_(uuid), capacity_(capacity), file_size_(file_size) {
  const uint32_t files = files_for(capacity, file_size);
  for (uint32_t index = 0; index < files; ++index) {
    files_.push_back({.path = data_file_path(options_, index),
                      .size = size_of_file(capacity, file_size, index)});
  }
}

DataFiles::~DataFiles() { close_fds(); }

void DataFiles::open_fds(const std::string& target) {
  const int flags = O_RDWR | O_CLOEXEC | (options_.direct_io ? O_DIRECT : 0);
  for (File& file : files_) {
    file.fd = ::open(file.path.c_str(), flags);
    if (file.fd < 0) {
      const int error = errno;
      close_fds();
      fail_io(target, "cannot open " + file.path, error);
    }
  }
}

void DataFiles::close_fds() {
  for (File& file : files_) {
    if (file.map != nullptr) ::munmap(file.map, kBlock + file.size);
    if (file.fd >= 0) ::close(file.fd);
    file.map = nullptr;
    file.fd = -1;
  }
}

template <class Io>
int DataFiles::for_each_piece(uint64_t at, uint64_t size, const Io& io) {
  uint64_t done = 0;
  while (done < size) {
    const uint64_t position = at + done - kBlock;  // from the start of the data space
    const uint64_t index = position / file_size_;
    if (at < kBlock || index >= files_.size()) return EINVAL;
    const uint64_t within = position - index * file_size_;
    const uint64_t length = std::min(size - done, files_[index].size - within);
    if (const int error = io(files_[index], kBlock + within, done, length); error != 0) {
      return error;
    }
    done += length;
  }
  return 0;
}

int DataFiles::write(IoEngine& io, std::span<const std::byte> data, uint64_t at) {
  return for_each_piece(at, data.size(),
                        [&](File& file, uint64_t offset, uint64_t from, uint64_t length) {
                          return io.write(file.fd, data.subspan(from, length), offset);
                        });
}

int DataFiles::read(IoEngine& io, std::span<std::byte> out, uint64_t at) {
  return for_each_piece(at, out.size(),
                        [&](File& file, uint64_t offset, uint64_t from, uint64_t length) {
                          return io.read(file.fd, out.subspan(from, length), offset);
                        });
}

int DataFiles::sync(IoEngine& io, uint64_t at, uint64_t size) {
  return for_each_piece(at, size, [&](File& file, uint64_t offset, uint64_t, uint64_t length) {
    return io.sync(file.fd, offset, length);
  });
}

int DataFiles::start_writeback(IoEngine& io, uint64_t at, uint64_t size) {
  return for_each_piece(at, size, [&](File& file, uint64_t offset, uint64_t, uint64_t length) {
    return io.start_writeback(file.fd, offset, length);
  });
}

void DataFiles::map_files() {
  for (File& file : files_) {
    struct stat info {};
    const uint64_t total = kBlock + file.size;
    if (file.map != nullptr || ::fstat(file.fd, &info) != 0 ||
        static_cast<uint64_t>(info.st_blocks) * 512 < total) {
      continue;
    }
    void* map = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, file.fd, 0);
    if (map != MAP_FAILED) file.map = static_cast<std::byte*>(map);
  }
}

std::byte* DataFiles::mapped(uint64_t at, uint64_t size) const {
  if (at < kBlock) return nullptr;
  const uint64_t position = at - kBlock;
  const uint64_t index = position / file_size_;
  if (index >= files_.size()) return nullptr;
  const File& file = files_[index];
  const uint64_t within = position - index * file_size_;
  if (file.map == nullptr || within + size > file.size) return nullptr;
  return file.map + kBlock + within;
}

void DataFiles::remove() {
  close_fds();
  for (const File& file : files_) ::unlink(file.path.c_str());
  if (options_.layout == DataLayout::kDirectory) remove_new_folder(options_);
}

}  // namespace dango::blob
