// Data-driven tests of process configurations: configs/valid.json (input -> the effective
// configuration a running process reports, compared as a subset, with its address written
// ADDRESS) and configs/invalid.json (input or raw text -> the one error message, checked in
// this process and, for every case, against dango-daemon: the message on stderr, exit code 2).
// An error may come from validation or from starting the process (a component that finds its
// config unusable, e.g. a store without a path). In both files @DIR@ stands for a fresh
// temporary directory (stores and group files go there).

#include <gtest/gtest.h>

#include <fstream>

#include "compose_test_util.hpp"
#include "dango/compose/process.hpp"

namespace dango::compose {
namespace {

using namespace testing;

struct Case {
  std::string name;
  nlohmann::json data;
};

std::vector<Case> load_cases(const std::string& file) {
  std::ifstream in(std::string(DANGO_SOURCE_DIR) + "/tests/compose/configs/" + file);
  std::vector<Case> cases;
  for (auto& entry : nlohmann::json::parse(in)) cases.push_back({entry["name"], entry});
  return cases;
}

// Replaces every occurrence of `from` in `text` by `to`.
std::string replaced(std::string text, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = text.find(from, pos)) != std::string::npos; pos += to.size()) {
    text.replace(pos, from.size(), to);
  }
  return text;
}

// The case's config text, its @DIR@ standing for `dir`.
std::string case_text(const nlohmann::json& data, const TempDir& dir) {
  const std::string text =
      data.contains("text") ? data["text"].get<std::string>() : data["input"].dump();
  return replaced(text, "@DIR@", dir.path().string());
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) { return info.param.name; }
// Names the case in test listings (CTest shows the parameter) instead of dumping its bytes.
void PrintTo(const Case& c, std::ostream* out) { *out << c.name; }

// Writes the process's address as ADDRESS and the temporary directory as @DIR@.
nlohmann::json normalized(const nlohmann::json& json, const std::string& address,
                          const TempDir& dir) {
  return nlohmann::json::parse(
      replaced(replaced(json.dump(), address, "ADDRESS"), dir.path().string(), "@DIR@"));
}

class ValidConfig : public ::testing::TestWithParam<Case> {};

TEST_P(ValidConfig, RunsAndReportsItsEffectiveConfiguration) {
  const auto& data = GetParam().data;
  TempDir dir;
  Process process{ProcessConfig::parse(case_text(data, dir), {})};
  const auto effective = normalized(process.query(), process.address(), dir);
  EXPECT_TRUE(contains(effective, data["effective"])) << effective.dump(2);
  process.stop();
}

INSTANTIATE_TEST_SUITE_P(Compose, ValidConfig, ::testing::ValuesIn(load_cases("valid.json")),
                         case_name);

class InvalidConfig : public ::testing::TestWithParam<Case> {};

TEST_P(InvalidConfig, IsRejectedWithOneMessageNamingTheKey) {
  const auto& data = GetParam().data;
  TempDir dir;
  try {
    Process process{ProcessConfig::parse(case_text(data, dir), {})};
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    // An expected message ending in "..." is a prefix: what follows depends on the build (the
    // bootstraps compiled in, for instance).
    const std::string actual = replaced(e.what(), dir.path().string(), "@DIR@");
    std::string expected = data["error"].get<std::string>();
    if (expected.ends_with("...")) {
      expected.resize(expected.size() - 3);
      EXPECT_EQ(actual.substr(0, expected.size()), expected);
    } else {
      EXPECT_EQ(actual, expected);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Compose, InvalidConfig, ::testing::ValuesIn(load_cases("invalid.json")),
                         case_name);

TEST(DaemonConfig, EveryInvalidConfigMakesTheDaemonExitWithCodeTwoAndTheMessage) {
  TempDir dir;
  for (const auto& c : load_cases("invalid.json")) {
    // Through stdin (-c -); modules come from the module path here, so the list of known
    // types in that one message may differ: the key path and the reason are compared.
    auto result = run(bin("dango-daemon"), {"-c", "-", "--module-path", module_dir()}, dir,
                      case_text(c.data, dir));
    EXPECT_EQ(result.code, 2) << c.name << ": " << result.err;
    std::string expected = replaced(c.data["error"], "@DIR@", dir.path().string());
    expected = expected.substr(0, expected.find(" (registered:"));
    if (expected.ends_with("...")) expected.resize(expected.size() - 3);  // a prefix
    EXPECT_NE(result.err.find("invalid configuration: " + expected), std::string::npos)
        << c.name << ": " << result.err;
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
  }
}

TEST(DaemonConfig, ConfigFileThatCannotBeReadIsAConfigError) {
  TempDir dir;
  auto result = run(bin("dango-daemon"), {"-c", dir.file("missing.json")}, dir);
  EXPECT_EQ(result.code, 2);
  EXPECT_NE(result.err.find("missing.json: cannot read the configuration file"), std::string::npos)
      << result.err;
}

}  // namespace
}  // namespace dango::compose
