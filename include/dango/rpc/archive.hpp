#pragma once
// The two binary archives behind RPC arguments and results: OutputArchive appends to a caller's
// reused byte vector, InputArchive reads a received message in place. Which types they carry is
// defined in dango/rpc/serialize.hpp (include that one, not this file).
//
// Wire format: every value is a fixed-width little-endian native copy (x86-64 and aarch64 only);
// a length (string, container) is a u32 before the elements. Nothing is self-describing: both
// sides must agree on the types, which the RPC layer guarantees by the RPC's signature.

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "dango/common/error.hpp"

namespace dango::rpc {

static_assert(std::endian::native == std::endian::little,
              "dango's wire format is a native copy; it assumes a little-endian host");

// A received message does not decode as the expected types: truncated, a length larger than
// the bytes left, an invalid bool/optional/variant tag, trailing bytes, or nesting too deep.
class DecodeError : public Error {
 public:
  using Error::Error;
};

// How a type T is written and read. Specialised in serialize.hpp for the standard types and for
// user types with serialize()/save()/load() members; specialise it yourself for a third-party
// type: `static void save(OutputArchive&, const T&)`, `static void load(InputArchive&, T&)` and
// optionally `static constexpr std::size_t kMinSize` (fewest bytes any value of T encodes to).
// The primary template is empty: T is not serializable.
template <class T>
struct Codec {};

// Writes values by appending to a caller-owned byte vector. The caller keeps the vector across
// messages (clear() keeps its capacity), so encoding allocates nothing in steady state.
// While the archive lives the vector may hold zero-filled slack past the encoded bytes; the
// destructor trims it, so read the vector only after the archive is gone (serialize_to does so).
class OutputArchive {
 public:
  static constexpr bool kLoading = false;  // lets a serialize() member tell the directions apart

  // Appends to `out` (does not clear it). `out` must outlive the archive.
  explicit OutputArchive(std::vector<std::byte>& out) noexcept : out_(out), pos_(out.size()) {}
  // Trims the slack: `out` then ends exactly at the last encoded byte.
  ~OutputArchive() { out_.resize(pos_); }  // shrinking neither allocates nor throws
  OutputArchive(const OutputArchive&) = delete;
  OutputArchive& operator=(const OutputArchive&) = delete;

  // Writes `value`. Returns *this so that `ar & a & b` chains.
  template <class T>
  OutputArchive& operator&(const T& value) {
    Codec<T>::save(*this, value);
    return *this;
  }
  // Writes each value in order; `ar(a, b)` is the same bytes as `ar & a & b`.
  template <class... Ts>
  OutputArchive& operator()(const Ts&... values) {
    (Codec<Ts>::save(*this, values), ...);
    return *this;
  }

  // Appends raw bytes (the primitive every codec ends in).
  void write_bytes(std::span<const std::byte> bytes) {
    if (bytes.size() >= kMaxSlack) return write_large(bytes);
    if (bytes.size() > out_.size() - pos_) grow(bytes.size());
    if (!bytes.empty()) std::memcpy(out_.data() + pos_, bytes.data(), bytes.size());
    pos_ += bytes.size();
  }
  // Appends the object representation of a trivially copyable value.
  template <class T>
    requires std::is_trivially_copyable_v<T>
  void write_raw(const T& value) {
    if (sizeof(T) > out_.size() - pos_) grow(sizeof(T));
    std::memcpy(out_.data() + pos_, &value, sizeof(T));
    pos_ += sizeof(T);
  }
  // Writes a length prefix (u32). Throws dango::Error above 2^32-1 elements.
  void write_length(std::size_t n) {
    if (n > std::numeric_limits<std::uint32_t>::max()) {
      throw Error("serialize: length " + std::to_string(n) + " does not fit the u32 prefix");
    }
    write_raw(static_cast<std::uint32_t>(n));
  }
  // Bytes encoded in the output vector (including what was there before this archive).
  std::size_t size() const noexcept { return pos_; }

 private:
  // Slack added when the vector must grow: as much as was written (at least kMinSlack, at most
  // kMaxSlack), so a message costs few resize calls and at most kMaxSlack zero-filled bytes more
  // than it needs.
  static constexpr std::size_t kMinSlack = 64;
  static constexpr std::size_t kMaxSlack = 4096;

  [[gnu::noinline]] void grow(std::size_t n) {
    out_.resize(pos_ + n + std::clamp(pos_, kMinSlack, kMaxSlack));
  }
  // A large write is appended directly, so its bytes are not zero-filled first.
  [[gnu::noinline]] void write_large(std::span<const std::byte> bytes) {
    out_.resize(pos_);
    out_.insert(out_.end(), bytes.begin(), bytes.end());
    pos_ += bytes.size();
  }

  std::vector<std::byte>& out_;
  std::size_t pos_;  // end of the encoded bytes; out_[pos_, size()) is slack
};

// Reads values from a received message, in place: every read is bounds-checked and throws
// DecodeError rather than reading past the end, and a std::string_view or
// std::span<const std::byte> read points into the message (valid while the message lives).
class InputArchive {
 public:
  static constexpr bool kLoading = true;  // lets a serialize() member tell the directions apart
  // Deepest nesting of user types (serialize()/load() members) accepted: a recursive type fed
  // hostile input must not overflow a ULT's small stack.
  static constexpr int kMaxNesting = 64;
  // Decoding never allocates, before reading the elements, more than this many bytes per byte
  // of input left: a garbage length cannot make it allocate gigabytes.
  static constexpr std::size_t kMaxInflation = 64;

  // Reads `in`, which must outlive the archive (and every view read from it).
  explicit InputArchive(std::span<const std::byte> in) noexcept : in_(in) {}

  // Reads into `value` (replacing its contents). Throws DecodeError on malformed input.
  template <class T>
  InputArchive& operator&(T& value) {
    Codec<T>::load(*this, value);
    return *this;
  }
  // Reads each value in order, as written by OutputArchive::operator().
  template <class... Ts>
  InputArchive& operator()(Ts&... values) {
    (Codec<Ts>::load(*this, values), ...);
    return *this;
  }

  // Returns a view of the next `n` bytes and consumes them; throws DecodeError past the end.
  std::span<const std::byte> read_bytes(std::size_t n) {
    if (n > in_.size() - pos_) throw_truncated(n);
    const std::span<const std::byte> bytes = in_.subspan(pos_, n);
    pos_ += n;
    return bytes;
  }
  // Reads a trivially copyable value written by OutputArchive::write_raw.
  template <class T>
    requires std::is_trivially_copyable_v<T> && std::is_default_constructible_v<T>
  T read_raw() {
    if (sizeof(T) > in_.size() - pos_) throw_truncated(sizeof(T));
    T value;
    std::memcpy(&value, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  // Reads a length prefix of elements that each encode to at least `min_element_size` bytes
  // (0 counts as 1), and rejects it with DecodeError when the bytes left cannot hold them.
  std::size_t read_length(std::size_t min_element_size) {
    const std::size_t n = read_raw<std::uint32_t>();
    const std::size_t per_element = min_element_size == 0 ? 1 : min_element_size;
    if (n > remaining() / per_element) throw_bad_length(n, per_element);
    return n;
  }
  // Bytes not yet read.
  std::size_t remaining() const noexcept { return in_.size() - pos_; }
  // Bytes read so far.
  std::size_t position() const noexcept { return pos_; }
  // Throws DecodeError unless every byte was read (a message with trailing bytes is malformed).
  void expect_end() const {
    if (pos_ != in_.size()) {
      throw DecodeError("deserialize: " + std::to_string(in_.size() - pos_) +
                        " trailing bytes after offset " + std::to_string(pos_));
    }
  }

  // Counts one level of user-type nesting for as long as it lives; throws DecodeError past
  // kMaxNesting.
  class NestingGuard {
   public:
    explicit NestingGuard(InputArchive& ar) : ar_(ar) {
      if (++ar_.depth_ > kMaxNesting) {
        --ar_.depth_;
        throw DecodeError("deserialize: nesting deeper than " + std::to_string(kMaxNesting) +
                          " at offset " + std::to_string(ar_.pos_));
      }
    }
    ~NestingGuard() { --ar_.depth_; }
    NestingGuard(const NestingGuard&) = delete;
    NestingGuard& operator=(const NestingGuard&) = delete;

   private:
    InputArchive& ar_;
  };

 private:
  [[noreturn, gnu::cold]] void throw_truncated(std::size_t n) const {
    throw DecodeError("deserialize: truncated message: " + std::to_string(n) +
                      " bytes needed at offset " + std::to_string(pos_) + ", " +
                      std::to_string(in_.size() - pos_) + " left");
  }
  [[noreturn, gnu::cold]] void throw_bad_length(std::size_t n, std::size_t per_element) const {
    throw DecodeError("deserialize: length " + std::to_string(n) + " at offset " +
                      std::to_string(pos_ - sizeof(std::uint32_t)) + " needs at least " +
                      std::to_string(n * per_element) + " bytes, " + std::to_string(remaining()) +
                      " left");
  }

  std::span<const std::byte> in_;
  std::size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace dango::rpc
