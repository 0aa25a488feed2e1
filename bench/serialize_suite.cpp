// `dango-bench serialize`: our archive (dango/rpc/serialize.hpp) against cereal's binary archive,
// the Debian-packaged library we would otherwise use, on the values an RPC carries.
//
// The baseline is given its best setting: cereal writes through a std::ostream whose streambuf
// appends to a reused vector and reads through one over the encoded bytes (so neither side
// allocates a buffer per message), and a fresh cereal archive per message, as a sender would
// use it. Both sides decode into a fresh value each time, as an RPC handler does.

#include <cereal/archives/binary.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/vector.hpp>
#include <cstddef>
#include <cstdint>
#include <istream>
#include <map>
#include <ostream>
#include <span>
#include <streambuf>
#include <string>
#include <tuple>
#include <vector>

#include "dango/rpc/serialize.hpp"
#include "suite.hpp"

namespace dango::bench {
namespace {

// The `encode_struct` value: a typical RPC argument with a name, a numeric payload and a small
// map. The one serialize() member serves both libraries.
struct Event {
  std::string name;
  std::vector<double> values;
  std::map<std::string, int> counts;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, values, counts);
  }
};

Event make_event() {
  Event event{.name = "run-0042/event-17", .values = {}, .counts = {}};
  for (int i = 0; i < 100; ++i) event.values.push_back(i * 0.5);
  for (int i = 0; i < 10; ++i) event.counts["counter_" + std::to_string(i)] = i * 7;
  return event;
}

// A streambuf appending to a reused byte vector: cereal's output without a per-message buffer.
class VectorOutBuf : public std::streambuf {
 public:
  std::vector<char>& bytes() { return bytes_; }

 protected:
  std::streamsize xsputn(const char* data, std::streamsize n) override {
    bytes_.insert(bytes_.end(), data, data + n);
    return n;
  }
  int_type overflow(int_type c) override {
    if (!traits_type::eq_int_type(c, traits_type::eof())) bytes_.push_back(static_cast<char>(c));
    return traits_type::not_eof(c);
  }

 private:
  std::vector<char> bytes_;
};

// A streambuf reading a byte range in place: cereal's input without copying the message first.
class SpanInBuf : public std::streambuf {
 public:
  void reset(const std::vector<char>& bytes) {
    char* begin = const_cast<char*>(bytes.data());  // the get area is only read
    setg(begin, begin, begin + bytes.size());
  }
};

// Runs `op` in batches and returns the median ns per op over `reps` batches, each batch long
// enough (~2 ms, ~0.5 ms with --quick) for the clock to be negligible.
template <class Op>
double ns_per_op(const Options& options, Op&& op) {
  const double batch_ns = options.quick ? 0.5e6 : 2e6;
  const int reps = options.quick ? 5 : 15;
  std::size_t iterations = 1;
  for (;;) {  // calibrate, which also warms caches and the allocator
    Stopwatch watch;
    for (std::size_t i = 0; i < iterations; ++i) op();
    if (watch.elapsed_ns() >= batch_ns / 4) {
      iterations = static_cast<std::size_t>(iterations * batch_ns / watch.elapsed_ns()) + 1;
      break;
    }
    iterations *= 2;
  }
  std::vector<double> samples;
  for (int r = 0; r < reps; ++r) {
    Stopwatch watch;
    for (std::size_t i = 0; i < iterations; ++i) op();
    samples.push_back(watch.elapsed_ns() / static_cast<double>(iterations));
  }
  return median(std::move(samples));
}

// Measures encode and decode of `value` with both libraries and adds the two records.
template <class T>
void compare(const Options& options, Reporter& reporter, const std::string& what, const T& value) {
  std::vector<std::byte> ours;
  const double ours_encode = ns_per_op(options, [&] {
    ours.clear();
    rpc::serialize_to(ours, value);
    do_not_optimize(ours.data());
  });

  VectorOutBuf out_buf;
  std::ostream out_stream(&out_buf);
  const double cereal_encode = ns_per_op(options, [&] {
    out_buf.bytes().clear();
    cereal::BinaryOutputArchive archive(out_stream);
    archive(value);
    do_not_optimize(out_buf.bytes().data());
  });

  const double ours_decode = ns_per_op(options, [&] {
    T decoded = rpc::deserialize_from<T>(ours);
    do_not_optimize(decoded);
  });

  const std::vector<char> cereal_bytes = out_buf.bytes();
  SpanInBuf in_buf;
  std::istream in_stream(&in_buf);
  const double cereal_decode = ns_per_op(options, [&] {
    in_buf.reset(cereal_bytes);
    in_stream.clear();
    cereal::BinaryInputArchive archive(in_stream);
    T decoded{};
    archive(decoded);
    do_not_optimize(decoded);
  });

  const std::map<std::string, std::string> extra = {
      {"cereal_bytes", std::to_string(cereal_bytes.size())}};
  reporter.add(Record{.case_name = "encode_" + what,
                      .size = ours.size(),
                      .value = ours_encode,
                      .unit = "ns",
                      .baseline = "cereal",
                      .baseline_value = cereal_encode,
                      .extra = extra});
  reporter.add(Record{.case_name = "decode_" + what,
                      .size = ours.size(),
                      .value = ours_decode,
                      .unit = "ns",
                      .baseline = "cereal",
                      .baseline_value = cereal_decode,
                      .extra = extra});
}

// The in-place read the RPC layer relies on: a byte payload decoded as a std::span into the
// message, against cereal, which can only copy it out into a vector.
void compare_view(const Options& options, Reporter& reporter) {
  const std::vector<std::uint8_t> payload(64 * kKiB, 0x5A);
  std::vector<std::byte> ours;
  rpc::serialize_to(ours, payload);
  const double ours_decode = ns_per_op(options, [&] {
    const auto view = rpc::deserialize_from<std::span<const std::byte>>(ours);
    do_not_optimize(view);
  });

  VectorOutBuf out_buf;
  std::ostream out_stream(&out_buf);
  {
    cereal::BinaryOutputArchive archive(out_stream);
    archive(payload);
  }
  const std::vector<char> cereal_bytes = out_buf.bytes();
  SpanInBuf in_buf;
  std::istream in_stream(&in_buf);
  const double cereal_decode = ns_per_op(options, [&] {
    in_buf.reset(cereal_bytes);
    in_stream.clear();
    cereal::BinaryInputArchive archive(in_stream);
    std::vector<std::uint8_t> decoded;
    archive(decoded);
    do_not_optimize(decoded);
  });
  reporter.add(Record{.case_name = "decode_bytes_64KiB_view",
                      .size = ours.size(),
                      .value = ours_decode,
                      .unit = "ns",
                      .baseline = "cereal",
                      .baseline_value = cereal_decode,
                      .extra = {{"cereal_bytes", std::to_string(cereal_bytes.size())},
                                {"ours", "std::span into the message"}}});
}

void run_serialize(const Options& options, Reporter& reporter) {
  compare(options, reporter, "small", std::tuple<int, int>{17, 42});
  compare(options, reporter, "struct", make_event());
  // A bulk-sized payload inside the message: both libraries copy it in one go.
  compare(options, reporter, "bytes_64KiB", std::vector<std::uint8_t>(64 * kKiB, 0x5A));
  compare_view(options, reporter);
}

}  // namespace

DANGO_REGISTER_BENCH_SUITE(serialize, run_serialize);

}  // namespace dango::bench
