// ThreadsOptions: the "threads" section of a Dango JSON document (DESIGN.md), parsed, validated
// and reported back. Invalid configurations are a data-driven table, as in Bedrock's config
// tests: each row is an input and the substrings its error message must contain (the key path
// first, then the offending name when there is one).

#include "dango/thread/options.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dango/common/error.hpp"
#include "dango/thread/runtime.hpp"

namespace dango::thread {
namespace {

using nlohmann::json;

// The "threads" section of the sketch in DESIGN.md, verbatim.
constexpr const char* kDesignExample = R"({
  "pools":    [{"name": "rpc", "kind": "fifo_wait"}],
  "xstreams": [{"name": "io", "pools": ["rpc"]}],
  "progress_pool": "__primary__", "rpc_pool": "rpc"
})";

// The message of the ConfigError that from_json throws for `input`, or "" if none is thrown.
std::string config_error_of(const json& input, std::string_view path = "threads") {
  try {
    ThreadsOptions::from_json(input, path);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

void expect_same_options(const ThreadsOptions& a, const ThreadsOptions& b) {
  ASSERT_EQ(a.pools.size(), b.pools.size());
  for (size_t i = 0; i < a.pools.size(); ++i) {
    EXPECT_EQ(a.pools[i].name, b.pools[i].name) << "pools[" << i << "]";
    EXPECT_EQ(a.pools[i].kind, b.pools[i].kind) << "pools[" << i << "]";
  }
  ASSERT_EQ(a.xstreams.size(), b.xstreams.size());
  for (size_t i = 0; i < a.xstreams.size(); ++i) {
    EXPECT_EQ(a.xstreams[i].name, b.xstreams[i].name) << "xstreams[" << i << "]";
    EXPECT_EQ(a.xstreams[i].pools, b.xstreams[i].pools) << "xstreams[" << i << "]";
  }
  EXPECT_EQ(a.progress_pool, b.progress_pool);
  EXPECT_EQ(a.rpc_pool, b.rpc_pool);
  EXPECT_EQ(a.stack_size, b.stack_size);
  EXPECT_EQ(a.idle_poll, b.idle_poll);
}

TEST(ThreadsOptions, FromJsonAcceptsTheDesignExample) {
  const ThreadsOptions options = ThreadsOptions::from_json(json::parse(kDesignExample));
  ASSERT_EQ(options.pools.size(), 1u);
  EXPECT_EQ(options.pools[0].name, "rpc");
  EXPECT_EQ(options.pools[0].kind, PoolKind::kFifoWait);
  ASSERT_EQ(options.xstreams.size(), 1u);
  EXPECT_EQ(options.xstreams[0].name, "io");
  EXPECT_EQ(options.xstreams[0].pools, std::vector<std::string>{"rpc"});
  EXPECT_EQ(options.progress_pool, kPrimary);
  EXPECT_EQ(options.rpc_pool, "rpc");
}

TEST(ThreadsOptions, FromJsonOfEmptyObjectGivesTheDefaults) {
  const ThreadsOptions options = ThreadsOptions::from_json(json::object());
  expect_same_options(options, ThreadsOptions{});
  EXPECT_EQ(options.progress_pool, kPrimary);
  EXPECT_EQ(options.rpc_pool, kPrimary);
  EXPECT_EQ(options.stack_size, size_t{256} << 10);
  EXPECT_EQ(options.idle_poll, std::chrono::microseconds(50));
}

TEST(ThreadsOptions, FromJsonAcceptsEveryPoolKind) {
  const json input = {
      {"pools",
       {{{"name", "a"}, {"kind", "fifo"}},
        {{"name", "b"}, {"kind", "fifo_wait"}},
        {{"name", "c"}, {"kind", "prio_wait"}}}},
      {"xstreams", {{{"name", "x"}, {"pools", {"a", "b", "c"}}}}},
  };
  const ThreadsOptions options = ThreadsOptions::from_json(input);
  ASSERT_EQ(options.pools.size(), 3u);
  EXPECT_EQ(options.pools[0].kind, PoolKind::kFifo);
  EXPECT_EQ(options.pools[1].kind, PoolKind::kFifoWait);
  EXPECT_EQ(options.pools[2].kind, PoolKind::kPrioWait);
}

TEST(ThreadsOptions, PoolKindDefaultsToFifoWait) {
  const json input = {{"pools", {{{"name", "a"}}}},
                      {"xstreams", {{{"name", "x"}, {"pools", {"a"}}}}}};
  EXPECT_EQ(ThreadsOptions::from_json(input).pools.at(0).kind, PoolKind::kFifoWait);
}

TEST(ThreadsOptions, PrimaryStreamMayListItsPools) {
  const json input = {
      {"pools", {{{"name", "extra"}}}},
      {"xstreams", {{{"name", "__primary__"}, {"pools", {"__primary__", "extra"}}}}}};
  const ThreadsOptions options = ThreadsOptions::from_json(input);
  ASSERT_EQ(options.xstreams.size(), 1u);
  EXPECT_EQ(options.xstreams[0].name, kPrimary);
}

TEST(ThreadsOptions, ToJsonOfDefaultsNamesEveryField) {
  const json j = ThreadsOptions{}.to_json();
  ASSERT_TRUE(j.is_object());
  EXPECT_TRUE(j.contains("pools"));
  EXPECT_TRUE(j.contains("xstreams"));
  EXPECT_EQ(j.at("progress_pool"), "__primary__");
  EXPECT_EQ(j.at("rpc_pool"), "__primary__");
  // The effective config fills in the defaults: stack size and idle poll are reported too.
  EXPECT_GE(j.size(), 6u) << j.dump();
}

TEST(ThreadsOptions, ToJsonRoundTripsTheDesignExample) {
  const ThreadsOptions parsed = ThreadsOptions::from_json(json::parse(kDesignExample));
  const json effective = parsed.to_json();
  const ThreadsOptions reparsed = ThreadsOptions::from_json(effective);
  expect_same_options(parsed, reparsed);
  EXPECT_EQ(reparsed.to_json(), effective);
  EXPECT_EQ(effective.at("pools").at(0).at("kind"), "fifo_wait");
}

TEST(ThreadsOptions, ToJsonRoundTripsEveryFieldBuiltInCpp) {
  const ThreadsOptions options{
      .pools = {{.name = "a", .kind = PoolKind::kFifo},
                {.name = "b", .kind = PoolKind::kPrioWait},
                {.name = "c", .kind = PoolKind::kFifoWait}},
      .xstreams = {{.name = "x0", .pools = {"a", "b"}}, {.name = "x1", .pools = {"c", "a"}}},
      .progress_pool = "c",
      .rpc_pool = "b",
      .stack_size = size_t{1} << 20,
      .idle_poll = std::chrono::microseconds(7),
  };
  const json j = options.to_json();
  const ThreadsOptions back = ThreadsOptions::from_json(j);
  expect_same_options(options, back);
  EXPECT_EQ(back.to_json(), j);
}

TEST(ThreadsOptions, ValidateRejectsAnUnknownPoolBuiltInCpp) {
  const ThreadsOptions options{.xstreams = {{.name = "x", .pools = {"nope"}}}};
  try {
    options.validate();
    FAIL() << "validate() accepted an xstream serving an unknown pool";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("threads.xstreams[0].pools[0]"), std::string::npos)
        << e.what();
  }
}

TEST(ThreadsOptions, ValidateAcceptsTheDefaults) { EXPECT_NO_THROW(ThreadsOptions{}.validate()); }

TEST(ThreadsOptions, ErrorPathStartsWithTheGivenPath) {
  const json input = {{"rpc_pool", "nope"}};
  const std::string message = config_error_of(input, "config.threads");
  EXPECT_NE(message.find("config.threads.rpc_pool"), std::string::npos) << message;
}

TEST(ThreadsOptions, RuntimeConstructorRejectsInvalidOptions) {
  EXPECT_THROW(Runtime(ThreadsOptions{.xstreams = {{.name = "x", .pools = {"nope"}}}}),
               ConfigError);
  EXPECT_THROW(Runtime(ThreadsOptions{.pools = {{.name = "lonely"}}}), ConfigError);
}

// ---- invalid configurations: input -> substrings of the error message -------------------------

struct InvalidConfig {
  const char* label;                  // names the row in the test name
  const char* input;                  // a "threads" section
  std::vector<std::string> expected;  // substrings of the ConfigError's message
};

void PrintTo(const InvalidConfig& row, std::ostream* os) { *os << row.label; }

const InvalidConfig kInvalidConfigs[] = {
    {"NotAnObject", R"([1, 2])", {"threads"}},
    {"UnknownTopLevelKey", R"({"colour": "red"})", {"threads", "colour"}},
    {"UnknownPoolKey",
     R"({"pools": [{"name": "a", "colour": "red"}], "xstreams": [{"name": "x", "pools": ["a"]}]})",
     {"threads.pools[0]", "colour"}},
    {"UnknownXstreamKey",
     R"({"pools": [{"name": "a"}], "xstreams": [{"name": "x", "pools": ["a"], "cpu": 3}]})",
     {"threads.xstreams[0]", "cpu"}},
    {"PoolsNotAnArray", R"({"pools": {"name": "a"}})", {"threads.pools"}},
    {"PoolNameWrongType",
     R"({"pools": [{"name": 7}], "xstreams": [{"name": "x", "pools": ["a"]}]})",
     {"threads.pools[0].name"}},
    {"PoolWithoutName", R"({"pools": [{"kind": "fifo"}]})", {"threads.pools[0]"}},
    {"XstreamPoolsWrongType",
     R"({"pools": [{"name": "a"}], "xstreams": [{"name": "x", "pools": "a"}]})",
     {"threads.xstreams[0].pools"}},
    {"XstreamPoolEntryWrongType",
     R"({"pools": [{"name": "a"}], "xstreams": [{"name": "x", "pools": ["a", 2]}]})",
     {"threads.xstreams[0].pools[1]"}},
    {"XstreamNameWrongType",
     R"({"pools": [{"name": "a"}], "xstreams": [{"name": false, "pools": ["a"]}]})",
     {"threads.xstreams[0].name"}},
    {"StackSizeWrongType", R"({"stack_size": "big"})", {"threads.stack_size"}},
    {"ProgressPoolWrongType", R"({"progress_pool": 3})", {"threads.progress_pool"}},
    {"UnknownPoolKind",
     R"({"pools": [{"name": "a", "kind": "fast"}], "xstreams": [{"name": "x", "pools": ["a"]}]})",
     {"threads.pools[0].kind", "fast"}},
    {"UnknownPoolReferencedByXstream",
     R"({"pools": [{"name": "a"}], "xstreams": [{"name": "x", "pools": ["a", "nope"]}]})",
     {"threads.xstreams[0].pools[1]", "nope"}},
    {"UnknownPoolInSecondXstream",
     R"({"pools": [{"name": "a"}],
         "xstreams": [{"name": "x", "pools": ["a"]}, {"name": "y", "pools": ["b"]}]})",
     {"threads.xstreams[1].pools[0]", "b"}},
    {"PoolUsedByNoStream",
     R"({"pools": [{"name": "a"}, {"name": "idle"}], "xstreams": [{"name": "x", "pools": ["a"]}]})",
     {"threads.pools[1]", "idle"}},
    {"DuplicatePoolName",
     R"({"pools": [{"name": "a"}, {"name": "a"}], "xstreams": [{"name": "x", "pools": ["a"]}]})",
     {"threads.pools[1]", "a"}},
    {"DuplicateXstreamName",
     R"({"pools": [{"name": "a"}],
         "xstreams": [{"name": "x", "pools": ["a"]}, {"name": "x", "pools": ["a"]}]})",
     {"threads.xstreams[1]", "x"}},
    {"UnknownProgressPool", R"({"progress_pool": "nope"})", {"threads.progress_pool", "nope"}},
    {"UnknownRpcPool",
     R"({"pools": [{"name": "a"}], "xstreams": [{"name": "x", "pools": ["a"]}], "rpc_pool": "b"})",
     {"threads.rpc_pool", "b"}},
};

class InvalidThreadsConfig : public testing::TestWithParam<InvalidConfig> {};

TEST_P(InvalidThreadsConfig, ThrowsConfigErrorNamingTheKey) {
  const InvalidConfig& row = GetParam();
  const json input = json::parse(row.input);
  const std::string message = config_error_of(input);
  ASSERT_FALSE(message.empty()) << "accepted: " << row.input;
  for (const std::string& part : row.expected) {
    EXPECT_NE(message.find(part), std::string::npos)
        << "message \"" << message << "\" lacks \"" << part << "\"";
  }
}

INSTANTIATE_TEST_SUITE_P(Table, InvalidThreadsConfig, testing::ValuesIn(kInvalidConfigs),
                         [](const testing::TestParamInfo<InvalidConfig>& info) {
                           return std::string(info.param.label);
                         });

}  // namespace
}  // namespace dango::thread
