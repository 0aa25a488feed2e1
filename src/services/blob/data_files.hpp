#pragma once
// DataFiles: the pre-allocated files holding a file target's region bytes, in one of two layouts:
//   file       one file at `path`: a header, then `capacity` bytes;
//   directory  a folder at `path` holding data.00000, data.00001, ...: each a header, then
//              `file_size` bytes (the last one the rest of the capacity), and the journal. For
//              file systems or quotas that limit the size of one file, and for spreading a target
//              over the storage servers of a parallel file system, which place files, not bytes.
// Both offer the allocator one space of target offsets [kBlock, kBlock + capacity); file i holds
// [kBlock + i * file_size, kBlock + (i + 1) * file_size) at its own offset kBlock + (t - kBlock -
// i * file_size). An extent may span files: read, write and sync split it at file boundaries.
//
// Header (kBlock bytes, little-endian): {"DANGOBLB", u32 version = 1, u32 block size, u64 target
// uuid, u64 capacity, u64 file_size, u32 index of the file, u32 number of files, zeros}. A single
// file written before directories existed has zeros for the last three: one file of `capacity`.
//
// Creation is crash-safe: the target exists once its first data file (the file itself, or
// data.00000, written last) is durable with its header; a crash before leaves files that the
// next creation replaces.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "services/blob/io_engine.hpp"

namespace dango::blob {

enum class DataLayout : uint8_t { kFile, kDirectory };

struct DataFilesOptions {
  std::string path{};
  DataLayout layout = DataLayout::kFile;
  uint64_t capacity = 0;   // of a new target (an existing one keeps its own)
  uint64_t file_size = 0;  // directory: data bytes per file of a new target
  bool direct_io = false;  // open the files with O_DIRECT
  bool zero_fill = false;  // create(): write zeros over the whole data area (see file.cpp)
};

class DataFiles {
 public:
  static constexpr uint64_t kBlock = 4096;  // header size, allocation unit, O_DIRECT alignment

  // True when a target exists at options.path (its first data file does).
  static bool exists(const DataFilesOptions& options);
  // Where the target's journal lives: `<path>.journal`, or `<path>/journal`.
  static std::string journal_path(const DataFilesOptions& options);
  // Makes what the journal needs before create() (directory: the folder). True when it made a
  // folder (which remove_new_folder() takes away again after a failed creation). Throws
  // blob::Error(kIoError) naming the path.
  static bool prepare(const DataFilesOptions& options, const std::string& target);
  static void remove_new_folder(const DataFilesOptions& options);
  // Creates the files of a new target `uuid`, space reserved, headers durable. Refuses at once,
  // writing nothing, when the file system has less free space than they need. Throws
  // blob::Error(kIoError) naming the file; nothing is left behind then.
  static std::unique_ptr<DataFiles> create(const DataFilesOptions& options, uint64_t uuid,
                                           const std::string& target);
  // Opens the files of an existing target. Throws blob::Error (kIoError: cannot open; kCorruption:
  // not a target's file, another target's, shorter than its header says, or missing).
  static std::unique_ptr<DataFiles> open(const DataFilesOptions& options,
                                         const std::string& target);
  // Made by create() and open() only (the key is theirs).
  class Key {
    friend class DataFiles;
    Key() = default;
  };
  DataFiles(Key, DataFilesOptions options, uint64_t uuid, uint64_t capacity, uint64_t file_size);
  ~DataFiles();
  DataFiles(const DataFiles&) = delete;
  DataFiles& operator=(const DataFiles&) = delete;

  uint64_t uuid() const { return uuid_; }
  uint64_t capacity() const { return capacity_; }
  uint64_t file_size() const { return file_size_; }
  size_t file_count() const { return files_.size(); }

  // I/O at target offsets, split across files; 0, or the errno of the first failure.
  int write(IoEngine& io, std::span<const std::byte> data, uint64_t at);
  int read(IoEngine& io, std::span<std::byte> out, uint64_t at);
  int sync(IoEngine& io, uint64_t at, uint64_t size);
  int start_writeback(IoEngine& io, uint64_t at, uint64_t size);

  // Maps each file whose every byte has its blocks (a write through the mapping then never needs
  // space: a fault that cannot get it would be SIGBUS), shared, for mapped().
  void map_files();
  // The bytes of [at, at + size) in a mapped file, or nullptr (not mapped, or spanning files).
  std::byte* mapped(uint64_t at, uint64_t size) const;

  // Closes and deletes the data files, and the folder of a directory target once it is empty
  // (the caller deletes the journal first). For a target being destroyed.
  void remove();

 private:
  struct File {
    std::string path;
    uint64_t size = 0;  // data bytes, after the header
    int fd = -1;
    std::byte* map = nullptr;  // header included, when mapped
  };

  // Calls `io(file, offset in the file, offset in the range, length)` for each file the range
  // [at, at + size) touches, in order; stops at the first nonzero result and returns it.
  template <class Io>
  int for_each_piece(uint64_t at, uint64_t size, const Io& io);
  void open_fds(const std::string& target);
  void close_fds();

  DataFilesOptions options_;
  uint64_t uuid_;
  uint64_t capacity_;
  uint64_t file_size_;
  std::vector<File> files_;
};

}  // namespace dango::blob
