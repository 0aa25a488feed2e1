#pragma once
// Journal: the layout log of a file target, in `<data file>.journal`. Each region created or
// erased appends one fixed-size, checksummed record; replaying the records on open rebuilds the
// region table (and from it the allocator). A record is durable once sync_through() covered it:
// a region's persist() syncs the journal up to the region's create record, so a persisted region
// survives a crash together with its data. A torn tail (a record half written when the process
// died) fails its checksum and is cut off on open. rewrite() compacts the journal into one
// create record per live region, atomically (new file, fdatasync, rename, fsync of the folder).
//
// File format (little-endian): a 64-byte header {"DANGOJNL", u32 version = 1, u32 0, u64 target
// uuid, zeros}, then 40-byte records {u32 crc32 of the next 36 bytes, u8 kind, 3 zero bytes,
// u64 region id, u64 offset, u64 size, u64 0}, then zeros to the end of the file (a run of zero
// bytes is no record: replay stops there).
//
// The file is grown ahead of the records, kGrowth bytes of written zeros at a time (synced), so
// that an append overwrites blocks the file already has: its fdatasync then writes one block and
// flushes the device, where an append that grows the file would also wait for the file system's
// journal commit (i_size changed) — a commit shared with every other writer of that file system,
// measured 4 ms typical and tens of ms on a busy one, against 0.1-0.3 ms in place.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace dango::blob {

struct JournalRecord {
  enum class Kind : uint8_t { kCreate = 1, kErase = 2 };
  Kind kind = Kind::kCreate;
  uint64_t id = 0;      // region number
  uint64_t offset = 0;  // extent offset in the data file (create)
  uint64_t size = 0;    // region size in bytes (create)
};

class Journal {
 public:
  // Opens the journal at `path` for the target `uuid`, or creates it (durably) when `create`.
  // Calls `replay` for each intact record in order. Throws blob::Error (kIoError: cannot open or
  // write; kCorruption: not a journal, or another target's).
  Journal(std::string path, uint64_t uuid, bool create,
          const std::function<void(const JournalRecord&)>& replay);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Appends a record (to the page cache: not yet durable); its sequence number, or 0 with
  // `error` set to the errno of a failed write (nothing was appended then).
  uint64_t append(const JournalRecord& record, int& error);
  // How a record reaches the disk: fdatasync of the journal's open file `fd`; 0, or an errno.
  // The default blocks the calling thread; a target passes its IoEngine's, which does not block
  // the execution stream.
  using Datasync = std::function<int(int fd)>;
  // Makes every record up to sequence `sequence` durable: one fdatasync covers all appended so
  // far, and none is made when an earlier one already covered `sequence`. Callers do not wait
  // for each other (concurrent ones each sync; the file system merges them). 0, or an errno.
  int sync_through(uint64_t sequence, const Datasync& datasync = {});
  // Every record up to this sequence number is durable.
  uint64_t synced_sequence() const { return synced_.load(std::memory_order_acquire); }
  // Records in the file (for deciding when to compact).
  uint64_t records_in_file() const;
  // Replaces the journal with `live` (one create record per live region); every earlier record
  // is then durable. 0, or an errno (the old journal then stays in place).
  int rewrite(const std::vector<JournalRecord>& live);
  const std::string& path() const { return path_; }

  static constexpr uint64_t kHeaderSize = 64;
  static constexpr uint64_t kRecordSize = 40;
  // Bytes of zeros the file grows by when the records reach its end (26214 records).
  static constexpr uint64_t kGrowth = 1 << 20;

 private:
  void create_file();
  void replay_file(uint64_t uuid, const std::function<void(const JournalRecord&)>& replay);
  // Makes room for one more record at end_ (grows the file by kGrowth when needed); 0, or errno.
  int reserve_record();

  // The open journal file; a sync in progress keeps the file it syncs open through a rewrite().
  struct OpenFile {
    int fd = -1;
    explicit OpenFile(int descriptor) : fd(descriptor) {}
    OpenFile(const OpenFile&) = delete;
    OpenFile& operator=(const OpenFile&) = delete;
    ~OpenFile();
  };

  std::string path_;
  uint64_t uuid_;
  std::shared_ptr<const OpenFile> file_;
  mutable std::mutex append_mutex_;  // guards file_, end_, file_size_, records_in_file_
  uint64_t end_ = kHeaderSize;       // where the next record goes
  uint64_t file_size_ = 0;           // bytes in the file: records, then zeros
  uint64_t records_in_file_ = 0;
  std::atomic<uint64_t> appended_{0};  // sequence numbers handed out
  std::atomic<uint64_t> synced_{0};    // all up to here are durable
};

// Fsyncs the folder holding `path` so that a created or renamed file survives a crash.
int sync_parent_directory(const std::string& path);

}  // namespace dango::blob
