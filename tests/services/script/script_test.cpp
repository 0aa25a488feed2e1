// The script service over every registered language, in process and over tcp: values and state,
// printed output, a script's errors, time limits, interpreters side by side, limits on code and
// output, administration, options.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dango/services/script/client.hpp"
#include "dango/services/script/provider.hpp"
#include "dango/thread/thread.hpp"
#include "services/script/script_test_util.hpp"

namespace dango::script {
namespace {

using namespace std::chrono_literals;
using testing::Deployment;
using testing::error_code_of;
using testing::kProviderId;

// The same behaviours written in each language.
struct Snippets {
  std::string bump;           // adds 1 to the global `count` (0 when unset)
  std::string count;          // the value of `count`
  std::string print_two;      // prints "hello" and 42 on one line
  std::string printed_two;    // ... as the language prints them
  std::string syntax_error;   // does not compile; the error is on line 2
  std::string raise_error;    // raises "boom" on line 2
  std::string busy_loop;      // never ends
  std::string catching_loop;  // never ends, catching every error raised inside
  std::string exit;           // asks the process to exit
  std::string print_many;     // prints 1,000 lines of 100 characters
  std::string join_args;      // the arguments "a" and "b" joined by "+"
  std::string no_args;        // whether `args` is empty
  std::string yes;            // how the language prints true
};

const std::map<std::string, Snippets>& snippets() {
  static const std::map<std::string, Snippets> table = {
      {"lua",
       {.bump = "count = (count or 0) + 1",
        .count = "return count",
        .print_two = "print('hello', 42)",
        .printed_two = "hello\t42\n",
        .syntax_error = "x = 1\ny = = 2",
        .raise_error = "local x = 1\nerror('boom')",
        .busy_loop = "while true do end",
        .catching_loop = "while true do pcall(function() while true do end end) end",
        .exit = "os.exit(3)",
        .print_many = "for i = 1, 1000 do print(string.rep('x', 99)) end",
        .join_args = "return args.a .. '+' .. args.b",
        .no_args = "return next(args) == nil",
        .yes = "true"}},
      {"python",
       {.bump = "count = globals().get('count', 0) + 1",
        .count = "count",
        .print_two = "print('hello', 42)",
        .printed_two = "hello 42\n",
        .syntax_error = "x = 1\ny = = 2",
        .raise_error = "x = 1\nraise ValueError('boom')",
        .busy_loop = "while True:\n    pass",
        .catching_loop = "while True:\n    try:\n        while True:\n            pass\n"
                         "    except BaseException:\n        pass",
        .exit = "import sys\nsys.exit(3)",
        .print_many = "for i in range(1000):\n    print('x' * 99)",
        .join_args = "args['a'] + '+' + args['b']",
        .no_args = "len(args) == 0",
        .yes = "True"}},
  };
  return table;
}

struct Param {
  std::string language;
  bool in_process;
};

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  return info.param.language + (info.param.in_process ? "_self" : "_tcp");
}

// Every registered language with snippets, in process and over tcp.
std::vector<Param> params() {
  std::vector<Param> out;
  for (const std::string& language : registered_languages()) {
    if (snippets().count(language) == 0) continue;
    out.push_back({language, true});
    out.push_back({language, false});
  }
  return out;
}

class Scripts : public ::testing::TestWithParam<Param> {
 protected:
  const Snippets& code() const { return snippets().at(GetParam().language); }
  InterpreterConfig interpreter(const std::string& name = "main",
                                std::chrono::milliseconds time_limit = 10s) const {
    return {.name = name, .language = GetParam().language, .time_limit = time_limit};
  }
  std::unique_ptr<Deployment> deploy(ProviderOptions options = {}) const {
    if (options.interpreters.empty()) options.interpreters.push_back(interpreter());
    return std::make_unique<Deployment>(std::move(options), GetParam().in_process);
  }
};

TEST_P(Scripts, GlobalStateCarriesOverFromOneScriptToTheNext) {
  auto d = deploy();
  Interpreter main = d->open();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(main.execute(code().bump).result, "");
  EXPECT_EQ(main.execute(code().count).result, "3");
}

TEST_P(Scripts, ArgumentsReachTheScriptAsArgsNeverAsCodeAndAreSetAnewEachTime) {
  auto d = deploy();
  Interpreter main = d->open();
  EXPECT_EQ(main.execute(code().join_args, {{"a", "1"}, {"b", "2"}}).result, "1+2");
  // Quotes and code in a value stay text.
  const std::string tricky = "x' .. os.exit(1) .. '\"); import sys; sys.exit(1) #";
  EXPECT_EQ(main.execute(code().join_args, {{"a", tricky}, {"b", ""}}).result, tricky + "+");
  EXPECT_EQ(main.execute(code().no_args).result, code().yes);
}

TEST_P(Scripts, WhatAScriptPrintsIsReturnedWithItsResult) {
  auto d = deploy();
  Execution run = d->open().execute(code().print_two);
  EXPECT_EQ(run.output, code().printed_two);
  EXPECT_FALSE(run.output_truncated);
}

TEST_P(Scripts, ASyntaxErrorIsAScriptErrorNamingTheLine) {
  auto d = deploy();
  std::string message;
  EXPECT_EQ(error_code_of([&] { d->open().execute(code().syntax_error); }, &message),
            ErrorCode::kScriptError);
  EXPECT_NE(message.find("interpreter \"main\""), std::string::npos) << message;
  EXPECT_NE(message.find("2"), std::string::npos) << message;
}

TEST_P(Scripts, AnErrorRaisedByAScriptReachesTheCallerAndTheInterpreterServesOn) {
  auto d = deploy();
  Interpreter main = d->open();
  main.execute(code().bump);
  std::string message;
  EXPECT_EQ(error_code_of([&] { main.execute(code().raise_error); }, &message),
            ErrorCode::kScriptError);
  EXPECT_NE(message.find("boom"), std::string::npos) << message;
  EXPECT_NE(message.find("2"), std::string::npos) << message;
  main.execute(code().bump);
  EXPECT_EQ(main.execute(code().count).result, "2");
}

TEST_P(Scripts, AScriptRunningPastItsTimeLimitIsStoppedAndTheStateSurvives) {
  ProviderOptions options{.interpreters = {interpreter("main", 300ms)}};
  auto d = deploy(options);
  Interpreter main = d->open();
  main.execute(code().bump);
  for (const std::string& script : {code().busy_loop, code().catching_loop}) {
    const auto start = std::chrono::steady_clock::now();
    std::string message;
    EXPECT_EQ(error_code_of([&] { main.execute(script); }, &message), ErrorCode::kTimeLimit)
        << script;
    EXPECT_NE(message.find("time limit"), std::string::npos) << message;
    EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
  }
  EXPECT_EQ(main.execute(code().count).result, "1");
}

TEST_P(Scripts, AScriptAskingToExitDoesNotEndTheServer) {
  auto d = deploy();
  Interpreter main = d->open();
  EXPECT_EQ(error_code_of([&] { main.execute(code().exit); }), ErrorCode::kScriptError);
  main.execute(code().bump);
  EXPECT_EQ(main.execute(code().count).result, "1");
}

TEST_P(Scripts, EachInterpreterHasItsOwnGlobals) {
  auto d = deploy({.interpreters = {interpreter("a"), interpreter("b")}});
  Interpreter a = d->open("a"), b = d->open("b");
  a.execute(code().bump);
  a.execute(code().bump);
  b.execute(code().bump);
  EXPECT_EQ(a.execute(code().count).result, "2");
  EXPECT_EQ(b.execute(code().count).result, "1");
}

TEST_P(Scripts, ScriptsSentTogetherToOneInterpreterAllRunOneAtATime) {
  auto d = deploy();
  Interpreter main = d->open();
  std::vector<thread::Ult> callers;
  for (int c = 0; c < 8; ++c) {
    callers.push_back(d->engine().rpc_pool().spawn([&] {
      for (int i = 0; i < 25; ++i) main.execute(code().bump);
    }));
  }
  for (auto& caller : callers) caller.join();
  EXPECT_EQ(main.execute(code().count).result, "200");
}

TEST_P(Scripts, ALongScriptDoesNotHoldUpAnotherInterpreter) {
  auto d = deploy({.interpreters = {interpreter("slow", 1500ms), interpreter("quick")}});
  Interpreter slow = d->open("slow"), quick = d->open("quick");
  std::atomic<bool> slow_done = false;
  auto busy = d->engine().rpc_pool().spawn([&] {
    EXPECT_EQ(error_code_of([&] { slow.execute(code().busy_loop); }), ErrorCode::kTimeLimit);
    slow_done = true;
  });
  thread::this_ult::sleep_for(50ms);  // the slow script has started
  quick.execute(code().bump);
  EXPECT_EQ(quick.execute(code().count).result, "1");
  EXPECT_FALSE(slow_done);
  busy.join();
}

TEST_P(Scripts, OutputPastTheLimitIsCutAndFlagged) {
  ProviderOptions options{.max_output_size = 1000};
  auto d = deploy(options);
  Execution run = d->open().execute(code().print_many);
  EXPECT_EQ(run.output.size(), 1000u);
  EXPECT_TRUE(run.output_truncated);
  EXPECT_EQ(run.output.substr(0, 100), std::string(99, 'x') + "\n");
}

TEST_P(Scripts, CodeLargerThanTheLimitIsRefusedUnrun) {
  ProviderOptions options{.max_code_size = 64};
  auto d = deploy(options);
  Interpreter main = d->open();
  std::string message;
  EXPECT_EQ(error_code_of([&] { main.execute(std::string(65, ' ') + code().bump); }, &message),
            ErrorCode::kInvalidArgument);
  EXPECT_NE(message.find("max_code_size"), std::string::npos) << message;
  main.execute(code().bump);
  EXPECT_EQ(main.execute(code().count).result, "1");
}

TEST_P(Scripts, InterpretersAreCreatedListedAndDestroyedAtRunTime) {
  auto d = deploy();
  Client client = d->client();
  const std::string address = d->server.address();
  client.create_interpreter(address, kProviderId, interpreter("extra"));
  EXPECT_EQ(client.list_interpreters(address, kProviderId),
            (std::vector<InterpreterInfo>{{"extra", GetParam().language},
                                          {"main", GetParam().language}}));
  EXPECT_EQ(error_code_of([&] { client.create_interpreter(address, kProviderId, interpreter("extra")); }),
            ErrorCode::kInterpreterExists);
  Interpreter extra = d->open("extra");
  extra.execute(code().bump);
  client.destroy_interpreter(address, kProviderId, "extra");
  EXPECT_EQ(error_code_of([&] { extra.execute(code().count); }), ErrorCode::kUnknownInterpreter);
  EXPECT_EQ(error_code_of([&] { d->open("extra"); }), ErrorCode::kUnknownInterpreter);
  EXPECT_EQ(error_code_of([&] { client.destroy_interpreter(address, kProviderId, "extra"); }),
            ErrorCode::kUnknownInterpreter);
  EXPECT_EQ(d->provider->interpreters().size(), 1u);
}

TEST_P(Scripts, AnInterpreterOfAnUnknownLanguageIsRefusedNamingTheKnownOnes) {
  auto d = deploy();
  std::string message;
  EXPECT_EQ(error_code_of(
                [&] {
                  d->client().create_interpreter(d->server.address(), kProviderId,
                                                 {.name = "x", .language = "cobol"});
                },
                &message),
            ErrorCode::kUnknownLanguage);
  EXPECT_NE(message.find("cobol"), std::string::npos) << message;
  EXPECT_NE(message.find(GetParam().language), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(Languages, Scripts, ::testing::ValuesIn(params()), param_name);

// ---- Lua only ---------------------------------------------------------------------------------

TEST(LuaScripts, AScriptPastTheMemoryLimitFailsAndTheInterpreterServesOn) {
  Deployment d({.interpreters = {{.name = "main", .language = "lua", .memory_limit = 4 << 20}}},
               false);
  Interpreter main = d.open();
  main.execute("kept = 'still here'");
  std::string message;
  EXPECT_EQ(error_code_of([&] { main.execute("local t = {} for i = 1, 1e8 do t[i] = i end"); },
                          &message),
            ErrorCode::kMemoryLimit);
  EXPECT_NE(message.find("memory limit"), std::string::npos) << message;
  EXPECT_EQ(main.execute("collectgarbage() return kept").result, "still here");
}

TEST(LuaScripts, AMemoryLimitTooSmallForTheInterpreterIsAConfigError) {
  rpc::Engine server{"tcp://127.0.0.1:0"};
  try {
    Provider provider(server, kProviderId,
                      {.interpreters = {{.name = "main", .language = "lua", .memory_limit = 1024}}});
    ADD_FAILURE() << "accepted a 1 KiB Lua heap";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("interpreters[0].memory_limit"), std::string::npos)
        << e.what();
  }
}

TEST(LuaScripts, BinaryChunksAreRefused) {
  Deployment d({.interpreters = {{.name = "main", .language = "lua"}}}, true);
  std::string message;
  EXPECT_EQ(error_code_of([&] { d.open().execute(std::string("\x1bLua", 4) + "garbage"); },
                          &message),
            ErrorCode::kScriptError);
  EXPECT_NE(message.find("binary"), std::string::npos) << message;
}

TEST(LuaScripts, AllReturnedValuesAreTheResultSeparatedByTabs) {
  Deployment d({.interpreters = {{.name = "main", .language = "lua"}}}, true);
  EXPECT_EQ(d.open().execute("return 1, 'two', nil, true").result, "1\ttwo\tnil\ttrue");
}

// ---- options ----------------------------------------------------------------------------------

TEST(ScriptOptions, ReadFromJsonWithDefaultsAndErrorsNamingTheKey) {
  auto options = ProviderOptions::from_json(nlohmann::json::parse(
      R"({"interpreter": {"name": "main", "language": "lua", "time_limit_ms": 250},
          "max_output_size": 4096})"));
  ASSERT_EQ(options.interpreters.size(), 1u);
  EXPECT_EQ(options.interpreters[0].time_limit, 250ms);
  EXPECT_EQ(options.interpreters[0].memory_limit, 0u);
  EXPECT_EQ(options.max_output_size, 4096u);
  EXPECT_EQ(options.max_code_size, size_t{1} << 20);
  EXPECT_EQ(ProviderOptions::from_json(options.to_json()).to_json(), options.to_json());
  const std::pair<const char*, const char*> bad[] = {
      {R"({"interpreters": [{"name": "a"}]})", "config.interpreters[0].language"},
      {R"({"interpreters": [{"language": "lua", "time_limit_ms": 0}]})",
       "config.interpreters[0].time_limit_ms"},
      {R"({"interpreters": [{"language": "lua", "memory": 5}]})", "config.interpreters[0].memory"},
      {R"({"max_code_size": 0})", "config.max_code_size"},
      {R"({"interpreters": 3})", "config.interpreters"},
  };
  for (const auto& [json, key] : bad) {
    try {
      ProviderOptions::from_json(nlohmann::json::parse(json), "config");
      ADD_FAILURE() << "accepted " << json;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
}

TEST(ScriptOptions, TwoInterpretersOfOneNameAreAConfigError) {
  rpc::Engine server{"tcp://127.0.0.1:0"};
  EXPECT_THROW(Provider(server, kProviderId,
                        {.interpreters = {{.name = "a", .language = "lua"},
                                          {.name = "a", .language = "lua"}}}),
               ConfigError);
}

TEST(ScriptOptions, TheProviderReportsItsEffectiveConfig) {
  rpc::Engine server{"tcp://127.0.0.1:0"};
  Provider provider(server, kProviderId, {.interpreters = {{.name = "main", .language = "lua"}}});
  provider.create_interpreter({.name = "late", .language = "lua", .time_limit = 2s});
  const nlohmann::json config = provider.config();
  ASSERT_EQ(config["interpreters"].size(), 2u);
  EXPECT_EQ(config["interpreters"][0]["name"], "late");
  EXPECT_EQ(config["interpreters"][0]["time_limit_ms"], 2000);
  EXPECT_EQ(config["interpreters"][1]["time_limit_ms"], 10000);
  EXPECT_EQ(config["max_code_size"], 1 << 20);
}

}  // namespace
}  // namespace dango::script
