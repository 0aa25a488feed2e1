// kv::Database against every registered backend (the list comes from the registry at run time),
// over tcp and in-process: single keys, modes, batches, packed batches, bulk-sized values and
// batches, asynchronous batches, listing and counting, and bad input.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "kv_test_util.hpp"

namespace dango::kv {
namespace {

using namespace testing;

struct Param {
  std::string backend;
  bool in_process;
};

// What CTest prints for a parameter ("rocksdb over tcp"), instead of its bytes.
void PrintTo(const Param& param, std::ostream* out) {
  *out << param.backend << (param.in_process ? " in-process" : " over tcp");
}

class KvDatabase : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    deployment_ =
        std::make_unique<Deployment>(GetParam().backend, GetParam().in_process, dir_.path());
    db_ = deployment_->open();
  }
  bool ordered() const { return describe(GetParam().backend).ordered; }

  TempDir dir_;
  std::unique_ptr<Deployment> deployment_;
  Database db_;
};

std::vector<std::string> numbered(const std::string& prefix, size_t n, size_t width = 5) {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) {
    std::string digits = std::to_string(i);
    out.push_back(prefix + std::string(width - std::min(width, digits.size()), '0') + digits);
  }
  return out;
}

std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

TEST_P(KvDatabase, PutThenGetReturnsTheValue) {
  db_.put("alpha", "one");
  EXPECT_EQ(db_.get("alpha"), "one");
  db_.put("alpha", "two");
  EXPECT_EQ(db_.get("alpha"), "two");
  EXPECT_EQ(db_.type(), GetParam().backend);
  EXPECT_EQ(db_.name(), "db");
}

TEST_P(KvDatabase, GetOfMissingKeyReturnsEmpty) {
  EXPECT_EQ(db_.get("missing"), std::nullopt);
  std::vector<std::byte> buffer(16);
  EXPECT_EQ(db_.get("missing", std::span(buffer)), std::nullopt);
  EXPECT_FALSE(db_.exists("missing"));
  EXPECT_EQ(db_.length("missing"), std::nullopt);
}

TEST_P(KvDatabase, BinaryKeysAndValuesRoundTrip) {
  const std::string key("k\0ey\xff", 5);
  const std::string value("\0\1\2\0", 4);
  db_.put(key, value);
  EXPECT_EQ(db_.get(key), value);
  db_.put("empty-value", "");
  EXPECT_EQ(db_.get("empty-value"), "");
  EXPECT_EQ(db_.length("empty-value"), 0u);
}

TEST_P(KvDatabase, ExistsAndLengthReportPresenceAndSize) {
  db_.put("k", "12345");
  EXPECT_TRUE(db_.exists("k"));
  EXPECT_EQ(db_.length("k"), 5u);
}

TEST_P(KvDatabase, EraseRemovesTheKeyAndErasingAMissingKeyIsNoError) {
  db_.put("k", "v");
  db_.erase("k");
  EXPECT_FALSE(db_.exists("k"));
  EXPECT_NO_THROW(db_.erase("k"));
}

TEST_P(KvDatabase, GetIntoCallerBufferReturnsTheSizeAndRefusesASmallBuffer) {
  db_.put("k", "0123456789");
  std::vector<std::byte> buffer(32);
  auto size = db_.get("k", std::span(buffer));
  ASSERT_EQ(size, 10u);
  EXPECT_EQ(std::memcmp(buffer.data(), "0123456789", 10), 0);
  std::vector<std::byte> small(4);
  EXPECT_EQ(error_code_of([&] { db_.get("k", std::span(small), {.consume = true}); }),
            ErrorCode::BufferTooSmall);
  EXPECT_EQ(db_.get("k"), "0123456789") << "a refused consume must leave the value";
}

TEST_P(KvDatabase, NewOnlyRefusesAnExistingKey) {
  db_.put("k", "first", {.mode = PutMode::NewOnly});
  std::string message;
  EXPECT_EQ(error_code_of([&] { db_.put("k", "second", {.mode = PutMode::NewOnly}); }, &message),
            ErrorCode::KeyExists);
  EXPECT_NE(message.find("\"k\""), std::string::npos) << message;
  EXPECT_EQ(db_.get("k"), "first");
}

TEST_P(KvDatabase, ExistOnlyUpdatesOnlyAnExistingKey) {
  EXPECT_EQ(error_code_of([&] { db_.put("k", "v", {.mode = PutMode::ExistOnly}); }),
            ErrorCode::KeyNotFound);
  EXPECT_FALSE(db_.exists("k"));
  db_.put("k", "v1");
  db_.put("k", "v2", {.mode = PutMode::ExistOnly});
  EXPECT_EQ(db_.get("k"), "v2");
}

TEST_P(KvDatabase, AppendConcatenatesOrCreates) {
  db_.put("k", "ab", {.mode = PutMode::Append});
  db_.put("k", "cd", {.mode = PutMode::Append});
  EXPECT_EQ(db_.get("k"), "abcd");
}

TEST_P(KvDatabase, ConsumeReturnsTheValueAndErasesIt) {
  db_.put("k", "v");
  EXPECT_EQ(db_.get("k", {.consume = true}), "v");
  EXPECT_FALSE(db_.exists("k"));
  EXPECT_EQ(db_.get("k", {.consume = true}), std::nullopt);
}

TEST_P(KvDatabase, BatchesPutGetExistsLengthAndErase) {
  auto keys = numbered("key", 100);
  std::vector<std::string> values;
  for (size_t i = 0; i < keys.size(); ++i) values.push_back(std::string(i, 'x'));
  auto applied = db_.put_multi(keys, values);
  EXPECT_EQ(std::count(applied.begin(), applied.end(), true), 100);

  std::vector<std::string> asked = {keys[3], "absent", keys[0], keys[99]};
  auto got = db_.get_multi(asked);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0], values[3]);
  EXPECT_EQ(got[1], std::nullopt);
  EXPECT_EQ(got[2], values[0]);
  EXPECT_EQ(got[3], values[99]);
  EXPECT_EQ(db_.exists_multi(asked), (std::vector<bool>{true, false, true, true}));
  EXPECT_EQ(db_.length_multi(asked), (std::vector<size_t>{3, kNotFound, 0, 99}));

  db_.erase_multi(std::vector<std::string>{keys[3], keys[99], "absent"});
  EXPECT_EQ(db_.exists_multi(asked), (std::vector<bool>{false, false, true, false}));
}

TEST_P(KvDatabase, PutMultiNewOnlyReportsWhichKeysWereWritten) {
  db_.put("b", "old");
  auto applied = db_.put_multi(std::vector<std::string>{"a", "b", "c"},
                               std::vector<std::string>{"1", "2", "3"}, {.mode = PutMode::NewOnly});
  EXPECT_EQ(applied, (std::vector<bool>{true, false, true}));
  EXPECT_EQ(db_.get("b"), "old");
  applied = db_.put_multi(std::vector<std::string>{"a", "zz"}, std::vector<std::string>{"x", "y"},
                          {.mode = PutMode::ExistOnly});
  EXPECT_EQ(applied, (std::vector<bool>{true, false}));
}

TEST_P(KvDatabase, PutMultiWithMismatchedSizesIsRejected) {
  EXPECT_EQ(error_code_of([&] {
              db_.put_multi(std::vector<std::string>{"a", "b"}, std::vector<std::string>{"1"});
            }),
            ErrorCode::InvalidArgument);
}

TEST_P(KvDatabase, PackedBatchesRoundTrip) {
  const std::string keys = "aabbbc";
  const std::vector<size_t> key_sizes = {2, 3, 1};
  const std::string values = "1223334444";
  const std::vector<size_t> value_sizes = {1, 2, 7};
  db_.put_packed(bytes_of(keys), key_sizes, bytes_of(values), value_sizes);

  const std::string ask = "bbbxyaa";
  const std::vector<size_t> ask_sizes = {3, 2, 2};
  std::vector<std::byte> out(64);
  std::vector<size_t> out_sizes(3);
  const size_t used = db_.get_packed(bytes_of(ask), ask_sizes, out, out_sizes);
  EXPECT_EQ(used, 3u);
  EXPECT_EQ(out_sizes, (std::vector<size_t>{2, kNotFound, 1}));  // "bbb", "xy" absent, "aa"
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(out.data()), used), "221");
}

TEST_P(KvDatabase, GetPackedIntoASmallBufferConsumesNothing) {
  db_.put("a", "0123456789");
  std::vector<std::byte> out(5);
  std::vector<size_t> sizes(1);
  const std::string key = "a";
  const std::vector<size_t> key_sizes = {1};
  EXPECT_EQ(error_code_of(
                [&] { db_.get_packed(bytes_of(key), key_sizes, out, sizes, {.consume = true}); }),
            ErrorCode::BufferTooSmall);
  EXPECT_TRUE(db_.exists("a"));
}

TEST_P(KvDatabase, LargeValuesTravelByBulkBothWays) {
  std::string big(300 * 1024 + 7, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 + 7);
  db_.put("big", big);
  EXPECT_EQ(db_.length("big"), big.size());
  EXPECT_EQ(db_.get("big"), big);
  std::vector<std::byte> buffer(big.size() + 100);
  ASSERT_EQ(db_.get("big", std::span(buffer)), big.size());
  EXPECT_EQ(std::memcmp(buffer.data(), big.data(), big.size()), 0);
  auto values = db_.get_multi(std::vector<std::string>{"big", "none", "big"});
  EXPECT_EQ(values[0], big);
  EXPECT_EQ(values[1], std::nullopt);
  EXPECT_EQ(values[2], big);
  EXPECT_EQ(db_.get("big", {.consume = true}), big);
  EXPECT_FALSE(db_.exists("big"));
}

TEST_P(KvDatabase, LargeBatchesTravelByBulk) {
  auto keys = numbered("batch/", 2000);
  std::vector<std::string> values;
  for (size_t i = 0; i < keys.size(); ++i) values.push_back(std::string(100, char('a' + i % 26)));
  db_.put_multi(keys, values);
  auto got = db_.get_multi(keys);
  ASSERT_EQ(got.size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) ASSERT_EQ(got[i], values[i]) << keys[i];
  EXPECT_EQ(db_.count(), keys.size());
  db_.erase_multi(keys);
  EXPECT_EQ(db_.count(), 0u);
}

TEST_P(KvDatabase, AsyncBatchesCanBeOutstandingTogether) {
  std::vector<std::vector<std::string>> keys, values;
  for (int b = 0; b < 4; ++b) {
    keys.push_back(numbered("async" + std::to_string(b) + "/", 50));
    values.push_back(std::vector<std::string>(50, std::string(10, char('A' + b))));
  }
  std::vector<Pending<std::vector<bool>>> puts;
  for (int b = 0; b < 4; ++b) puts.push_back(db_.put_multi_async(keys[b], values[b]));
  for (auto& p : puts) EXPECT_EQ(p.wait(), std::vector<bool>(50, true));
  std::vector<Pending<std::vector<std::optional<std::string>>>> gets;
  for (int b = 0; b < 4; ++b) gets.push_back(db_.get_multi_async(keys[b]));
  auto lengths = db_.length_multi_async(keys[0]);
  auto exists = db_.exists_multi_async(keys[1]);
  for (int b = 0; b < 4; ++b) {
    auto got = gets[b].wait();
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], values[b][i]);
  }
  EXPECT_EQ(lengths.wait(), std::vector<size_t>(50, 10));
  EXPECT_EQ(exists.wait(), std::vector<bool>(50, true));
  db_.erase_multi_async(keys[2]).wait();
  EXPECT_EQ(db_.exists_multi(keys[2]), std::vector<bool>(50, false));
}

TEST_P(KvDatabase, PackedAsyncPutsOfLargeBatchesCanBeOutstandingTogether) {
  // Batches of different sizes above the inline limit: the provider pulls each into a buffer of
  // its own while the others are outstanding, and reuses those buffers for the next ones.
  constexpr int kBatches = 6;
  constexpr size_t kPerBatch = 300;
  std::vector<std::string> keys(kBatches), values(kBatches);
  std::vector<std::vector<size_t>> key_sizes(kBatches), value_sizes(kBatches);
  for (int b = 0; b < kBatches; ++b) {
    for (size_t i = 0; i < kPerBatch; ++i) {
      const std::string key = "packed" + std::to_string(b) + "/" + std::to_string(i);
      const std::string value(100 + 40 * b + i % 7, static_cast<char>('a' + (b + i) % 26));
      keys[b] += key;
      key_sizes[b].push_back(key.size());
      values[b] += value;
      value_sizes[b].push_back(value.size());
    }
  }
  std::vector<Pending<std::vector<bool>>> puts;
  for (int b = 0; b < kBatches; ++b) {
    puts.push_back(
        db_.put_packed_async(bytes_of(keys[b]), key_sizes[b], bytes_of(values[b]), value_sizes[b]));
    if (puts.size() == 3) {  // three outstanding at a time, as a loader would keep
      EXPECT_EQ(puts.front().wait(), std::vector<bool>(kPerBatch, true));
      puts.erase(puts.begin());
    }
  }
  for (auto& p : puts) EXPECT_EQ(p.wait(), std::vector<bool>(kPerBatch, true));
  for (int b = 0; b < kBatches; ++b) {
    std::vector<std::byte> out(values[b].size());
    std::vector<size_t> out_sizes(kPerBatch);
    ASSERT_EQ(db_.get_packed(bytes_of(keys[b]), key_sizes[b], out, out_sizes), out.size());
    EXPECT_EQ(out_sizes, value_sizes[b]);
    EXPECT_EQ(std::memcmp(out.data(), values[b].data(), out.size()), 0) << "batch " << b;
  }
  // A conditional packed put reports per key, like the synchronous one.
  auto again = db_.put_packed_async(bytes_of(keys[0]), key_sizes[0], bytes_of(values[0]),
                                    value_sizes[0], {.mode = PutMode::NewOnly});
  EXPECT_EQ(again.wait(), std::vector<bool>(kPerBatch, false));
}

// A packed batch of `n` keys "big/<i>" with values of varied sizes, about 10 MiB in all for
// n = 1800 (more than twice the part the provider pulls and writes at once, kPutPartBytes = 4 MiB),
// one of them larger than a part by itself.
struct BigBatch {
  std::string keys, values;
  std::vector<size_t> key_sizes, value_sizes;
  void add(const std::string& key, const std::string& value) {
    keys += key;
    key_sizes.push_back(key.size());
    values += value;
    value_sizes.push_back(value.size());
  }
  std::string value(size_t i) const {
    size_t at = 0;
    for (size_t j = 0; j < i; ++j) at += value_sizes[j];
    return values.substr(at, value_sizes[i]);
  }
};

BigBatch big_batch(size_t n) {
  BigBatch batch;
  for (size_t i = 0; i < n; ++i) {
    const size_t size = i == n / 2 ? (size_t{5} << 20) : 512 + (i * 997) % 3000;
    std::string value(size, '\0');
    for (size_t j = 0; j < size; j += 61) value[j] = static_cast<char>('a' + (i + j) % 26);
    batch.add("big/" + std::to_string(i), value);
  }
  return batch;
}

TEST_P(KvDatabase, BatchesLargerThanAPartArriveWhole) {
  BigBatch batch = big_batch(1800);
  // A key named again near the end (in a later part) under NewOnly: its first value stays.
  const std::string repeated = "big/3";
  batch.add(repeated, "second value");
  auto applied = db_.put_packed(bytes_of(batch.keys), batch.key_sizes, bytes_of(batch.values),
                                batch.value_sizes, {.mode = PutMode::NewOnly});
  ASSERT_EQ(applied.size(), 1801u);
  EXPECT_EQ(std::count(applied.begin(), applied.end(), true), 1800);
  EXPECT_FALSE(applied.back());
  EXPECT_EQ(db_.count(), 1800u);
  for (size_t i : {size_t{0}, size_t{3}, size_t{899}, size_t{900}, size_t{901}, size_t{1799}}) {
    EXPECT_EQ(db_.get("big/" + std::to_string(i)), batch.value(i)) << "key " << i;
  }
}

// About 1.5 MiB: written in several slices (kPutSliceBytes = 256 KiB) by a store that accepts
// short writes, in one put by the others.
TEST_P(KvDatabase, ABatchOfManySlicesKeepsItsOrderAndModesAcrossThem) {
  BigBatch batch;
  for (size_t i = 0; i < 600; ++i) {
    batch.add("slice/" + std::to_string(i), std::string(2500, static_cast<char>('a' + i % 26)));
  }
  batch.add("slice/0", "+tail");  // the same key again, in the last slice
  auto applied = db_.put_packed(bytes_of(batch.keys), batch.key_sizes, bytes_of(batch.values),
                                batch.value_sizes, {.mode = PutMode::Append});
  EXPECT_EQ(applied, std::vector<bool>(601, true));
  EXPECT_EQ(db_.count(), 600u);
  EXPECT_EQ(db_.get("slice/0"), std::string(2500, 'a') + "+tail");
  EXPECT_EQ(db_.get("slice/599"), std::string(2500, static_cast<char>('a' + 599 % 26)));
  // Under NewOnly every key of every slice is refused now, and nothing changes.
  applied = db_.put_packed(bytes_of(batch.keys), batch.key_sizes, bytes_of(batch.values),
                           batch.value_sizes, {.mode = PutMode::NewOnly});
  EXPECT_EQ(applied, std::vector<bool>(601, false));
  EXPECT_EQ(db_.get("slice/0"), std::string(2500, 'a') + "+tail");
}

TEST_P(KvDatabase, LargeBatchesOutstandingTogetherAreAllAppliedWhileSmallCallsAreAnswered) {
  // Four batches of 1.2 MB each in flight at once (stores that take no short writes write
  // them on the provider's writer thread, one after the other), and small calls between them.
  std::vector<BigBatch> batches(4);
  for (size_t b = 0; b < batches.size(); ++b) {
    for (size_t i = 0; i < 300; ++i) {
      batches[b].add("many/" + std::to_string(b) + "/" + std::to_string(i),
                     std::string(4000, static_cast<char>('a' + (b + i) % 26)));
    }
  }
  db_.put("small", "before");
  std::vector<Pending<std::vector<bool>>> pending;
  for (auto& batch : batches) {
    pending.push_back(db_.put_packed_async(bytes_of(batch.keys), batch.key_sizes,
                                           bytes_of(batch.values), batch.value_sizes));
  }
  EXPECT_EQ(db_.get("small"), "before");
  db_.put("small", "during");
  for (auto& p : pending) EXPECT_EQ(p.wait(), std::vector<bool>(300, true));
  EXPECT_EQ(db_.count(), 4u * 300 + 1);
  EXPECT_EQ(db_.get("small"), "during");
  for (size_t b = 0; b < batches.size(); ++b) {
    EXPECT_EQ(db_.get("many/" + std::to_string(b) + "/299"), batches[b].value(299));
  }
}

TEST_P(KvDatabase, AnInvalidKeyAtTheEndOfALargeBatchWritesNothing) {
  BigBatch batch = big_batch(1800);
  batch.add(std::string(5000, 'k'), "over the key limit");
  EXPECT_EQ(error_code_of([&] {
              db_.put_packed(bytes_of(batch.keys), batch.key_sizes, bytes_of(batch.values),
                             batch.value_sizes);
            }),
            ErrorCode::SizeLimit);
  EXPECT_EQ(db_.count(), 0u);
}

TEST_P(KvDatabase, EmptyKeyIsRejectedAndTheDatabaseKeepsServing) {
  std::string message;
  EXPECT_EQ(error_code_of([&] { db_.put("", "v"); }, &message), ErrorCode::InvalidArgument);
  EXPECT_NE(message.find("empty key"), std::string::npos) << message;
  EXPECT_EQ(error_code_of([&] { db_.get(""); }), ErrorCode::InvalidArgument);
  EXPECT_EQ(error_code_of([&] {
              db_.put_multi(std::vector<std::string>{"ok", ""}, std::vector<std::string>{"1", "2"});
            }),
            ErrorCode::InvalidArgument);
  EXPECT_FALSE(db_.exists("ok")) << "a batch with an invalid key writes nothing";
  db_.put("fine", "still serving");
  EXPECT_EQ(db_.get("fine"), "still serving");
}

TEST_P(KvDatabase, KeysAndValuesOverTheLimitsAreRejected) {
  std::string message;
  EXPECT_EQ(error_code_of([&] { db_.put(std::string(5000, 'k'), "v"); }, &message),
            ErrorCode::SizeLimit);
  EXPECT_NE(message.find("over the limit"), std::string::npos) << message;
  EXPECT_EQ(db_.count(), 0u);
}

TEST_P(KvDatabase, CountCountsKeys) {
  EXPECT_EQ(db_.count(), 0u);
  db_.put_multi(numbered("c", 37), std::vector<std::string>(37, "v"));
  EXPECT_EQ(db_.count(), 37u);
}

TEST_P(KvDatabase, ListingPagesNeverSkipOrRepeatAKey) {
  auto keys = numbered("p/", 250);
  db_.put_multi(keys, keys);
  db_.put("a-before", "x");
  db_.put("q-after", "x");
  if (!ordered()) {
    std::string message;
    EXPECT_EQ(error_code_of([&] { db_.list_keys(); }, &message), ErrorCode::Unsupported);
    EXPECT_NE(message.find("cannot list"), std::string::npos) << message;
    return;
  }
  std::vector<std::string> seen;
  ListOptions options{.prefix = "p/", .max = 7};
  for (;;) {
    auto page = db_.list_keys(options);
    if (page.empty()) break;
    EXPECT_LE(page.size(), 7u);
    seen.insert(seen.end(), page.begin(), page.end());
    options.start = page.back();
    options.inclusive = false;
  }
  EXPECT_EQ(seen, keys);
}

TEST_P(KvDatabase, ListingHonoursStartInclusionAndReturnsValues) {
  if (!ordered())
    GTEST_SKIP() << "unordered backend (covered by ListingPagesNeverSkipOrRepeatAKey)";
  db_.put_multi(std::vector<std::string>{"a", "b", "c", "d"},
                std::vector<std::string>{"1", "2", "3", "4"});
  EXPECT_EQ(db_.list_keys({.start = "b"}), (std::vector<std::string>{"b", "c", "d"}));
  EXPECT_EQ(db_.list_keys({.start = "b", .inclusive = false}),
            (std::vector<std::string>{"c", "d"}));
  EXPECT_EQ(db_.list_keys({.start = "bb", .max = 1}), (std::vector<std::string>{"c"}));
  EXPECT_EQ(db_.list_keyvals({.start = "c"}), (std::vector<KeyValue>{{"c", "3"}, {"d", "4"}}));
  EXPECT_TRUE(db_.list_keys({.prefix = "z"}).empty());
}

std::vector<Param> all_params() {
  std::vector<Param> out;
  for (const auto& name : backend_names()) {
    out.push_back({name, false});
    out.push_back({name, true});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Backends, KvDatabase, ::testing::ValuesIn(all_params()),
                         [](const ::testing::TestParamInfo<Param>& info) {
                           return info.param.backend + (info.param.in_process ? "_self" : "_tcp");
                         });

}  // namespace
}  // namespace dango::kv
