// Tests of dango/rpc/serialize.hpp: round trips of every supported type, the pinned wire format,
// and that malformed input (truncated, garbage lengths, bad tags, random bytes) is a DecodeError,
// never a crash or a huge allocation.

#include "dango/rpc/serialize.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

namespace dango::rpc {
namespace {

using Bytes = std::vector<std::byte>;

enum class Color : std::uint8_t { kRed = 1, kGreen = 2, kBlue = 3 };
enum Plain : int { kPlainA = -7, kPlainB = 1 << 20 };

// A user type with the one serialize() member for both directions.
struct Particle {
  std::string name;
  std::vector<double> position;
  std::map<std::string, int> counts;
  Color color = Color::kRed;
  std::optional<std::uint64_t> parent;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, position, counts, color, parent);
  }
  bool operator==(const Particle&) const = default;
};

// A user type with separate save/load members; it stores a derived field it does not send.
class Range {
 public:
  Range() = default;
  Range(std::int64_t begin, std::int64_t end) : begin_(begin), end_(end), size_(end - begin) {}
  void save(OutputArchive& ar) const { ar & begin_ & end_; }
  void load(InputArchive& ar) {
    ar & begin_ & end_;
    size_ = end_ - begin_;
  }
  std::int64_t size() const { return size_; }
  bool operator==(const Range&) const = default;

 private:
  std::int64_t begin_ = 0;
  std::int64_t end_ = 0;
  std::int64_t size_ = 0;
};

// A recursive user type, to exercise the nesting limit.
struct Node {
  int value = 0;
  std::vector<Node> children;
  template <class Archive>
  void serialize(Archive& ar) {
    ar & value & children;
  }
  bool operator==(const Node&) const = default;
};

// A user type that encodes to nothing: not allowed as a container element.
struct Empty {
  template <class Archive>
  void serialize(Archive&) {}
};

struct NotSerializable {
  int x;
};

static_assert(Serializable<int>);
static_assert(Serializable<Color>);
static_assert(Serializable<std::map<std::string, std::vector<std::optional<Particle>>>>);
static_assert(Serializable<std::variant<std::monostate, int, Range>>);
static_assert(Serializable<std::tuple<int, std::string_view, std::span<const std::byte>>>);
static_assert(Encodable<std::tuple<const int&, const std::string&>>);
static_assert(!Serializable<int*>);
static_assert(!Serializable<const char*>);
static_assert(!Serializable<char[4]>);
static_assert(!Serializable<NotSerializable>);
static_assert(!Serializable<std::vector<NotSerializable>>);
static_assert(!Serializable<std::optional<std::map<int, NotSerializable>>>);

template <class T>
Bytes encode(const T& value) {
  Bytes out;
  serialize_to(out, value);
  return out;
}

template <class T>
T round_trip(const T& value) {
  return deserialize_from<T>(encode(value));
}

template <class T>
void expect_round_trip(const T& value) {
  EXPECT_EQ(round_trip(value), value);
}

Bytes bytes_of(std::initializer_list<int> values) {
  Bytes out;
  for (int v : values) out.push_back(static_cast<std::byte>(v));
  return out;
}

Particle sample_particle() {
  return Particle{.name = "muon",
                  .position = {1.5, -2.25, 3e10},
                  .counts = {{"hits", 12}, {"misses", -3}},
                  .color = Color::kBlue,
                  .parent = 42};
}

// Counts the bytes a container asks for, to show a garbage length allocates nothing.
inline std::size_t g_allocated_bytes = 0;
template <class T>
struct CountingAllocator {
  using value_type = T;
  CountingAllocator() = default;
  template <class U>
  CountingAllocator(const CountingAllocator<U>&) {}
  T* allocate(std::size_t n) {
    g_allocated_bytes += n * sizeof(T);
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) { std::allocator<T>().deallocate(p, n); }
  bool operator==(const CountingAllocator&) const = default;
};

// ---- round trips --------------------------------------------------------------------------------

TEST(Serialize, ArithmeticTypesRoundTripIncludingLimits) {
  expect_round_trip(std::int8_t{-128});
  expect_round_trip(std::uint8_t{255});
  expect_round_trip(std::int16_t{-12345});
  expect_round_trip(std::uint16_t{65535});
  expect_round_trip(std::numeric_limits<std::int32_t>::min());
  expect_round_trip(std::numeric_limits<std::uint32_t>::max());
  expect_round_trip(std::numeric_limits<std::int64_t>::min());
  expect_round_trip(std::numeric_limits<std::uint64_t>::max());
  expect_round_trip('x');
  expect_round_trip(char8_t{u8'y'});
  expect_round_trip(3.5f);
  expect_round_trip(-0.0);
  expect_round_trip(std::numeric_limits<double>::infinity());
  expect_round_trip(std::size_t{1} << 40);
  expect_round_trip(true);
  expect_round_trip(false);
}

TEST(Serialize, EnumsRoundTripAsTheirUnderlyingType) {
  expect_round_trip(Color::kGreen);
  expect_round_trip(kPlainA);
  expect_round_trip(kPlainB);
  expect_round_trip(std::byte{0xAB});
  EXPECT_EQ(encode(Color::kBlue).size(), 1u);
}

TEST(Serialize, StringsRoundTripIncludingEmptyAndEmbeddedNul) {
  expect_round_trip(std::string());
  expect_round_trip(std::string("hello"));
  expect_round_trip(std::string("a\0b\0", 4));
  expect_round_trip(std::string(100000, 'z'));
}

TEST(Serialize, StringViewEncodesLikeStringAndDecodesAsViewIntoTheBuffer) {
  const std::string text = "zero copy please";
  const Bytes as_view = encode(std::string_view(text));
  EXPECT_EQ(as_view, encode(text));

  const auto view = deserialize_from<std::string_view>(as_view);
  EXPECT_EQ(view, text);
  const auto* first = reinterpret_cast<const char*>(as_view.data());
  EXPECT_GE(view.data(), first);
  EXPECT_LE(view.data() + view.size(), first + as_view.size());
  EXPECT_EQ(view.data(), first + sizeof(std::uint32_t));  // right after the length
}

TEST(Serialize, ByteSpanEncodesLikeByteVectorAndDecodesAsViewIntoTheBuffer) {
  const Bytes payload = bytes_of({1, 2, 3, 0, 255});
  const Bytes encoded = encode(std::span<const std::byte>(payload));
  EXPECT_EQ(encoded, encode(payload));
  EXPECT_EQ(deserialize_from<Bytes>(encoded), payload);

  const auto view = deserialize_from<std::span<const std::byte>>(encoded);
  ASSERT_EQ(view.size(), payload.size());
  EXPECT_TRUE(std::equal(view.begin(), view.end(), payload.begin()));
  EXPECT_EQ(view.data(), encoded.data() + sizeof(std::uint32_t));
}

TEST(Serialize, VectorsRoundTrip) {
  expect_round_trip(std::vector<int>{});
  expect_round_trip(std::vector<int>{1, -2, 3});
  expect_round_trip(std::vector<double>(1000, 0.25));
  expect_round_trip(std::vector<Color>{Color::kRed, Color::kBlue});
  expect_round_trip(std::vector<std::string>{"", "a", "bc"});
  expect_round_trip(std::vector<bool>{true, false, true, true});
  expect_round_trip(std::vector<std::vector<int>>{{}, {1}, {2, 3}});
}

TEST(Serialize, ScalarVectorIsLengthThenTheRawElements) {
  EXPECT_EQ(encode(std::vector<std::uint16_t>{0x0102, 0x0304}),
            bytes_of({2, 0, 0, 0, 0x02, 0x01, 0x04, 0x03}));
}

TEST(Serialize, ArraysRoundTripWithoutALength) {
  expect_round_trip(std::array<int, 3>{7, 8, 9});
  expect_round_trip(std::array<std::string, 2>{"x", "yz"});
  expect_round_trip(std::array<bool, 3>{true, false, true});
  expect_round_trip(std::array<int, 0>{});
  EXPECT_EQ(encode(std::array<std::uint8_t, 3>{1, 2, 3}), bytes_of({1, 2, 3}));
}

TEST(Serialize, MapsAndSetsRoundTrip) {
  expect_round_trip(std::map<std::string, int>{{"a", 1}, {"b", 2}, {"c", 3}});
  expect_round_trip(std::map<int, std::string>{});
  expect_round_trip(std::unordered_map<int, std::vector<std::string>>{{1, {"x"}}, {2, {}}});
  expect_round_trip(std::set<std::string>{"k1", "k2", "k3"});
  expect_round_trip(std::unordered_set<std::uint64_t>{1, 1u << 31, 99});
}

TEST(Serialize, OptionalRoundTripsBothStates) {
  expect_round_trip(std::optional<int>{});
  expect_round_trip(std::optional<int>{5});
  expect_round_trip(std::optional<std::string>{"s"});
  EXPECT_EQ(encode(std::optional<int>{}), bytes_of({0}));
}

TEST(Serialize, VariantRoundTripsEveryAlternative) {
  using V = std::variant<std::monostate, int, std::string, std::vector<double>, Range>;
  expect_round_trip(V{});
  expect_round_trip(V{42});
  expect_round_trip(V{std::string("str")});
  expect_round_trip(V{std::vector<double>{1.0, 2.0}});
  expect_round_trip(V{Range{3, 10}});
  EXPECT_EQ(encode(V{7}), bytes_of({1, 7, 0, 0, 0}));
}

TEST(Serialize, TuplesPairsAndMonostateRoundTrip) {
  expect_round_trip(std::tuple<>{});
  expect_round_trip(std::tuple<int, std::string, double>{1, "two", 3.0});
  expect_round_trip(std::pair<std::string, std::vector<int>>{"p", {1, 2}});
  expect_round_trip(std::monostate{});
  EXPECT_TRUE(encode(std::monostate{}).empty());
}

TEST(Serialize, ChronoDurationsAndTimePointsRoundTrip) {
  using namespace std::chrono_literals;
  expect_round_trip(1500ms);
  expect_round_trip(std::chrono::nanoseconds{-1});
  expect_round_trip(std::chrono::duration<double>{2.5});
  const auto now =
      std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
  expect_round_trip(now);
}

TEST(Serialize, UserTypeWithSerializeMemberRoundTrips) {
  expect_round_trip(sample_particle());
  expect_round_trip(Particle{});
}

TEST(Serialize, UserTypeWithSaveAndLoadMembersRoundTrips) {
  const Range decoded = round_trip(Range{-5, 20});
  EXPECT_EQ(decoded, Range(-5, 20));
  EXPECT_EQ(decoded.size(), 25);  // recomputed by load(), not sent
  EXPECT_EQ(encode(Range{1, 2}).size(), 16u);
}

TEST(Serialize, NestedContainersOfUserTypesRoundTrip) {
  using Nested =
      std::map<std::string, std::vector<std::optional<std::variant<int, Particle, Range>>>>;
  Nested value;
  value["first"] = {std::nullopt, 3, sample_particle(), Range{0, 1}};
  value["second"] = {};
  value["third"] = {Particle{
      .name = "e", .position = {}, .counts = {}, .color = Color::kGreen, .parent = std::nullopt}};
  expect_round_trip(value);

  Node tree{.value = 1, .children = {{.value = 2, .children = {}}, {.value = 3, .children = {}}}};
  tree.children[1].children.push_back({.value = 4, .children = {}});
  expect_round_trip(tree);
}

TEST(Serialize, ArchiveCallAndChainingWriteTheSameBytes) {
  const int a = 1;
  const std::string b = "b";
  const std::vector<int> c = {3};
  Bytes called, chained;
  OutputArchive{called}(a, b, c);
  OutputArchive{chained} & a & b & c;
  EXPECT_EQ(called, chained);

  int a2 = 0;
  std::string b2;
  std::vector<int> c2;
  InputArchive in(called);
  in(a2, b2, c2);
  EXPECT_EQ(std::tie(a2, b2, c2), std::tie(a, b, c));
  EXPECT_EQ(in.remaining(), 0u);
}

TEST(Serialize, ArgumentsSerializeAsTheirTuple) {
  Bytes args;
  serialize_to(args, 7, std::string("x"), sample_particle());
  EXPECT_EQ(args, encode(std::tuple<int, std::string, Particle>{7, "x", sample_particle()}));
  EXPECT_EQ(args, encode(std::forward_as_tuple(7, std::string("x"), sample_particle())));

  const auto [i, s, p] = deserialize_from<std::tuple<int, std::string, Particle>>(args);
  EXPECT_EQ(i, 7);
  EXPECT_EQ(s, "x");
  EXPECT_EQ(p, sample_particle());

  int i2 = 0;
  std::string_view s2;
  Particle p2;
  deserialize_into(args, i2, s2, p2);
  EXPECT_EQ(std::tie(i2, s2, p2), std::tie(i, s, p));
}

TEST(Serialize, SerializeToAppendsAndReusesTheCallersCapacity) {
  Bytes buffer;
  serialize_to(buffer, 1);
  serialize_to(buffer, 2);
  EXPECT_EQ(buffer, bytes_of({1, 0, 0, 0, 2, 0, 0, 0}));

  buffer.clear();
  serialize_to(buffer, sample_particle());
  const std::byte* storage = buffer.data();
  for (int i = 0; i < 10; ++i) {
    buffer.clear();
    serialize_to(buffer, sample_particle());
    EXPECT_EQ(buffer.data(), storage);  // no reallocation in steady state
  }
}

TEST(Serialize, OutputArchiveEndsTheVectorAtTheLastByteWhenDestroyed) {
  Bytes buffer = bytes_of({9});
  {
    OutputArchive ar(buffer);
    ar & std::uint16_t{0x0102};
    EXPECT_EQ(ar.size(), 3u);  // the vector itself may hold slack meanwhile
    ar & std::vector<std::uint8_t>(10000, 7);  // a large write, appended directly
    ar & std::uint8_t{5};
    EXPECT_EQ(ar.size(), 3u + 4u + 10000u + 1u);
  }
  ASSERT_EQ(buffer.size(), 3u + 4u + 10000u + 1u);
  EXPECT_EQ(buffer[0], std::byte{9});
  EXPECT_EQ(buffer[1], std::byte{2});
  EXPECT_EQ(buffer[3], std::byte{0x10});  // 10000 = 0x2710, little-endian
  EXPECT_EQ(buffer[7 + 9999], std::byte{7});
  EXPECT_EQ(buffer.back(), std::byte{5});
}

TEST(Serialize, DecodingIntoExistingObjectsReplacesTheirContents) {
  std::vector<std::string> strings = {"old1", "old2", "old3"};
  deserialize_into(encode(std::vector<std::string>{"new"}), strings);
  EXPECT_EQ(strings, std::vector<std::string>{"new"});

  std::map<int, int> map = {{1, 1}, {2, 2}};
  deserialize_into(encode(std::map<int, int>{{3, 3}}), map);
  EXPECT_EQ(map, (std::map<int, int>{{3, 3}}));

  std::optional<std::string> opt = "present";
  deserialize_into(encode(std::optional<std::string>{}), opt);
  EXPECT_FALSE(opt.has_value());

  std::variant<int, std::string> var = std::string("held");
  deserialize_into(encode(std::variant<int, std::string>{5}), var);
  EXPECT_EQ(var, (std::variant<int, std::string>{5}));
}

// ---- malformed input ----------------------------------------------------------------------------

TEST(SerializeDecode, EveryTruncatedPrefixThrowsDecodeError) {
  using Complex = std::tuple<Particle, std::vector<std::string>, std::optional<Range>,
                             std::variant<int, std::string>, std::unordered_map<int, bool>,
                             std::array<std::uint16_t, 3>, Node>;
  const Complex value{sample_particle(),
                      {"a", "bb", ""},
                      Range{1, 9},
                      std::string("v"),
                      {{1, true}, {2, false}},
                      {1, 2, 3},
                      Node{.value = 1, .children = {{.value = 2, .children = {}}}}};
  const Bytes full = encode(value);
  ASSERT_EQ(deserialize_from<Complex>(full), value);
  for (std::size_t n = 0; n < full.size(); ++n) {
    EXPECT_THROW(deserialize_from<Complex>(std::span(full).first(n)), DecodeError)
        << "prefix of " << n << " bytes";
  }
}

TEST(SerializeDecode, TrailingBytesThrowDecodeError) {
  Bytes bytes = encode(5);
  bytes.push_back(std::byte{0});
  EXPECT_THROW(deserialize_from<int>(bytes), DecodeError);
  EXPECT_EQ((deserialize_from<std::tuple<int, std::uint8_t>>(bytes)), std::make_tuple(5, 0));
}

TEST(SerializeDecode, GarbageLengthThrowsWithoutAllocating) {
  using CountedString = std::basic_string<char, std::char_traits<char>, CountingAllocator<char>>;
  using CountedInts = std::vector<std::int32_t, CountingAllocator<std::int32_t>>;
  using CountedStrings = std::vector<std::string, CountingAllocator<std::string>>;
  using CountedMap = std::unordered_map<int, int, std::hash<int>, std::equal_to<>,
                                        CountingAllocator<std::pair<const int, int>>>;
  const Bytes garbage = bytes_of({0xFF, 0xFF, 0xFF, 0xFF, 'a', 'b', 'c', 'd', 'e', 'f'});

  g_allocated_bytes = 0;
  EXPECT_THROW(deserialize_from<CountedString>(garbage), DecodeError);
  EXPECT_THROW(deserialize_from<CountedInts>(garbage), DecodeError);
  EXPECT_THROW(deserialize_from<CountedStrings>(garbage), DecodeError);
  EXPECT_THROW(deserialize_from<CountedMap>(garbage), DecodeError);
  EXPECT_EQ(g_allocated_bytes, 0u);

  // A length the bytes left could hold only at 1 byte per element is still refused for
  // elements that need 4.
  EXPECT_THROW(deserialize_from<std::vector<std::int32_t>>(bytes_of({3, 0, 0, 0, 1, 2, 3})),
               DecodeError);
  EXPECT_THROW(deserialize_from<std::vector<std::string>>(bytes_of({2, 0, 0, 0, 0, 0, 0, 0})),
               DecodeError);
}

TEST(SerializeDecode, InvalidTagsThrowDecodeError) {
  EXPECT_THROW(deserialize_from<bool>(bytes_of({2})), DecodeError);
  EXPECT_THROW(deserialize_from<std::vector<bool>>(bytes_of({1, 0, 0, 0, 7})), DecodeError);
  EXPECT_THROW(deserialize_from<std::optional<int>>(bytes_of({2, 0, 0, 0, 0})), DecodeError);
  using V = std::variant<int, std::string>;
  EXPECT_THROW(deserialize_from<V>(bytes_of({2, 0, 0, 0, 0})), DecodeError);
}

TEST(SerializeDecode, DuplicateKeysThrowDecodeError) {
  Bytes bytes;
  {
    OutputArchive ar(bytes);
    ar.write_length(2);
    ar(1, 10, 1, 20);
  }
  EXPECT_THROW((deserialize_from<std::map<int, int>>(bytes)), DecodeError);
  EXPECT_THROW((deserialize_from<std::unordered_map<int, int>>(bytes)), DecodeError);
}

TEST(SerializeDecode, NestingBeyondTheLimitThrowsDecodeError) {
  // Node{0, [Node{0, [ ... ]}]}: each level is a value and a one-element children length.
  const auto chain = [](int depth) {
    Bytes bytes;
    {
      OutputArchive ar(bytes);
      for (int i = 0; i < depth; ++i) ar(0, std::uint32_t{i + 1 < depth ? 1u : 0u});
    }
    return bytes;
  };
  EXPECT_NO_THROW(deserialize_from<Node>(chain(InputArchive::kMaxNesting)));
  EXPECT_THROW(deserialize_from<Node>(chain(InputArchive::kMaxNesting + 1)), DecodeError);
  EXPECT_THROW(deserialize_from<Node>(chain(100000)), DecodeError);
}

TEST(SerializeDecode, RandomBytesNeverCrash) {
  using Complex = std::tuple<Particle, std::vector<std::string>, std::optional<Range>,
                             std::variant<std::monostate, int, std::string, std::set<int>>,
                             std::map<std::string, std::vector<bool>>, Node, std::string_view>;
  std::mt19937_64 rng(20240611);
  const Bytes valid = encode(Complex{sample_particle(),
                                     {"a", "bb"},
                                     Range{1, 2},
                                     std::set<int>{1, 2},
                                     {{"k", {true, false}}},
                                     Node{.value = 1, .children = {{.value = 2, .children = {}}}},
                                     "view"});
  int decoded = 0;
  for (int iteration = 0; iteration < 20000; ++iteration) {
    Bytes input;
    if (iteration % 2 == 0) {  // pure noise, mostly small lengths to get past the first fields
      input.resize(rng() % 256);
      for (auto& b : input) b = static_cast<std::byte>(rng() % 4 == 0 ? rng() : rng() % 3);
    } else {  // a valid message with a few bytes changed and maybe cut short
      input = valid;
      for (int flips = 1 + static_cast<int>(rng() % 4); flips > 0; --flips) {
        input[rng() % input.size()] = static_cast<std::byte>(rng());
      }
      if (rng() % 4 == 0) input.resize(rng() % input.size());
    }
    try {
      (void)deserialize_from<Complex>(input);
      ++decoded;
    } catch (const DecodeError&) {
    }
  }
  EXPECT_GT(decoded, 0);  // some mutations land in values and still decode
}

// ---- encoding errors ----------------------------------------------------------------------------

TEST(SerializeEncode, ContainerElementThatEncodesToNothingIsRefused) {
  Bytes out;
  EXPECT_THROW(serialize_to(out, std::vector<Empty>(3)), Error);
  EXPECT_THROW(serialize_to(out, std::vector<std::monostate>(1)), Error);
  EXPECT_NO_THROW(serialize_to(out, std::vector<std::monostate>{}));
  EXPECT_NO_THROW(serialize_to(out, Empty{}));  // fine on its own
}

}  // namespace
}  // namespace dango::rpc
