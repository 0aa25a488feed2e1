#pragma once
// A lock-free multi-producer, single-consumer ring of variable-size records in shared memory:
// one direction of an sm connection. Producers (any thread of the sending process) reserve room
// with one compare-and-swap on `tail`, write the record, then publish it by storing its commit
// word with release semantics; the consumer (the receiving process's progress thread) reads
// records in reservation order and stops at the first one not yet committed.
//
// A commit word holds the record's absolute ring position xor a per-connection random key.
// Positions never repeat, so a stale header from an earlier lap, or payload bytes that happen to
// lie where a header now goes, cannot pass for a committed record (a chance of 2^-64).
//
// Records are 16-byte aligned and never wrap: a record that does not fit before the end of the
// buffer is preceded by a padding record that runs to the end. The consumer keeps its own copy
// of `head` and never reads `tail`, so a corrupt peer can only make it see a malformed record,
// which it reports as kCorrupt (the connection is then closed).
//
// Sleeping: the consumer sets `waiting` and re-checks for data before it sleeps; a producer that
// committed a record reads `waiting` after a full fence (Dekker's pattern), so no wake-up is
// lost and none is sent while the consumer polls. The other way round, a producer that found the
// ring full and wants to sleep sets `room_wanted` and retries once; a consumer that released
// records reads `room_wanted` after a full fence and then wakes the producer's process.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

namespace dango::net::sm {

inline constexpr size_t kRecordAlign = 16;
inline constexpr size_t kRecordHeaderSize = 16;

enum class RecordType : uint8_t {
  kPad = 1,             // filler up to the end of the buffer
  kMessage = 2,         // a whole user message
  kFirstFragment = 3,   // u64 total length, then the first bytes of a large message
  kMiddleFragment = 4,  // more bytes of the large message in progress
  kLastFragment = 5,    // its final bytes: the message is delivered
  kGetRequest = 6,      // fallback bulk (no cross-memory attach): read a range of a region
  kPutRequest = 7,      // fallback bulk: a range of a region is about to be written
  kBulkData = 8,        // bytes of a fallback get reply or put
  kBulkDone = 9,        // the outcome of one fallback bulk chunk
};
inline constexpr uint8_t kLastRecordType = static_cast<uint8_t>(RecordType::kBulkDone);

// The shared control words of one ring, each on its own cache line.
struct RingControl {
  alignas(64) uint64_t tail;     // next position producers reserve
  alignas(64) uint64_t head;     // position up to which the consumer has released records
  alignas(64) uint32_t waiting;  // 1 while the consumer is (about to be) asleep
  alignas(64) uint32_t room_wanted;  // 1 while a producer waits for the consumer to free room
};

class Ring {
 public:
  enum class Result : uint8_t { kOk, kFull, kCorrupt };
  struct Reservation {
    std::byte* header = nullptr;
    std::byte* payload = nullptr;
    uint64_t position = 0;
  };
  struct Record {
    RecordType type = RecordType::kPad;
    std::span<const std::byte> payload;
  };

  Ring() = default;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  // Points the ring at shared memory: `capacity` is a power of two and a multiple of
  // kRecordAlign; `data` holds capacity bytes. Called once, before any other member.
  void attach(RingControl* control, std::byte* data, size_t capacity, uint64_t key) {
    control_ = control;
    data_ = data;
    capacity_ = capacity;
    key_ = key;
  }

  // Largest payload of one record: a quarter of the ring, so several records are in flight.
  size_t max_payload() const { return capacity_ / 4 - kRecordHeaderSize; }

  // --- producer side (any thread) ---
  // Reserves a record of `length` <= max_payload() bytes. kFull when the consumer lags;
  // kCorrupt when the shared positions are impossible.
  Result reserve(size_t length, Reservation& out);
  // Publishes a reserved record. Returns true when the consumer announced it sleeps (the
  // caller then wakes it; exactly one producer gets true per announcement).
  bool commit(const Reservation& r, RecordType type, size_t length);
  // Announces that a producer will sleep until the consumer frees room. The caller must then
  // retry its reservation once: room freed before the announcement sends no wake-up.
  void want_room();

  // --- consumer side (one thread) ---
  // The record at the head: kOk fills `out`; kFull means none committed yet.
  Result peek(Record& out);
  // Releases the record returned by the last successful peek(); its bytes may then be reused.
  void release();
  // Announces a sleep; returns false (and withdraws it) when a record is already there.
  bool arm_wait();
  void disarm_wait();
  bool has_record() const;
  // After releasing records: true when a producer announced it waits for room (exactly one
  // caller gets true per announcement); the caller then wakes the producer's process.
  bool take_room_request();

 private:
  std::atomic_ref<uint64_t> commit_word(uint64_t position) const {
    return std::atomic_ref<uint64_t>(
        *reinterpret_cast<uint64_t*>(data_ + (position & (capacity_ - 1))));
  }

  RingControl* control_ = nullptr;
  std::byte* data_ = nullptr;
  size_t capacity_ = 0;
  uint64_t key_ = 0;
  // Producers' last seen head: reloaded from shared memory only when the ring looks full, so
  // an uncongested send does not pull the consumer's cache line.
  std::atomic<uint64_t> cached_head_{0};
  // Consumer only: its own head and the size of the last peeked record.
  uint64_t head_ = 0;
  size_t peeked_size_ = 0;
};

}  // namespace dango::net::sm
