// The python language through the script service's Provider and Client, in process and over
// tcp: what only Python does (the value of a final expression, sys.stdout and sys.stderr, its
// exceptions' messages, SystemExit, a loop catching the time limit, memory_limit refused, one
// runtime shared by interpreters running at the same time). The behaviours every language
// shares are in script_test.cpp.

#include <gtest/gtest.h>

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
using testing::kProviderId;

InterpreterConfig python(const std::string& name, std::chrono::milliseconds time_limit = 10s) {
  return {.name = name, .language = "python", .time_limit = time_limit};
}

// The script::Error `body` threw; fails the test when it threw none.
template <class F>
Error error_of(F&& body) {
  try {
    body();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no script::Error thrown";
  return Error(ErrorCode::kOk, "");
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class PythonScripts : public ::testing::TestWithParam<bool> {
 protected:
  std::unique_ptr<Deployment> serve(std::vector<InterpreterConfig> interpreters = {python("main")}) {
    return std::make_unique<Deployment>(ProviderOptions{.interpreters = std::move(interpreters)},
                                    GetParam());
  }
};

TEST_P(PythonScripts, TheValueOfAFinalExpressionIsTheResult) {
  auto server = serve();
  Interpreter main = server->open();
  EXPECT_EQ(main.execute("x = 2\nx * 21").result, "42");
  EXPECT_EQ(main.execute("'text'").result, "text");
  EXPECT_EQ(main.execute("[x, None]").result, "[2, None]");
  EXPECT_EQ(main.execute("y = x").result, "");
  EXPECT_EQ(main.execute("None").result, "");
  EXPECT_EQ(main.execute("").result, "");
  Execution printed = main.execute("print('shown')");
  EXPECT_EQ(printed.result, "");  // print's value is None
  EXPECT_EQ(printed.output, "shown\n");
}

TEST_P(PythonScripts, NamesAndFunctionsDefinedByAScriptServeTheNextOnes) {
  auto server = serve();
  Interpreter main = server->open();
  main.execute("import math\ndef area(r):\n    return math.pi * r * r\nunit = 1");
  EXPECT_EQ(main.execute("round(area(unit * 2), 3)").result, "12.566");
  EXPECT_EQ(main.execute("__name__").result, "__main__");
}

TEST_P(PythonScripts, InterpretersDoNotSeeEachOthersGlobals) {
  auto server = serve({python("a"), python("b")});
  Interpreter a = server->open("a"), b = server->open("b");
  a.execute("secret = 42");
  EXPECT_EQ(b.execute("'secret' in globals()").result, "False");
  EXPECT_EQ(error_of([&] { b.execute("secret"); }).code(), ErrorCode::kScriptError);
  EXPECT_EQ(a.execute("secret").result, "42");
}

TEST_P(PythonScripts, WhatGoesToStdoutAndStderrIsTheOutputInOrder) {
  auto server = serve();
  Interpreter main = server->open();
  Execution run = main.execute(
      "import sys\nprint('a', 1)\nsys.stdout.write('b\\n')\nsys.stderr.write('c\\n')\n"
      "print('d', file=sys.stderr, flush=True)");
  EXPECT_EQ(run.output, "a 1\nb\nc\nd\n");
}

TEST_P(PythonScripts, AScriptReplacingOrClosingSysStdoutDoesNotTakeTheNextOnesOutput) {
  auto server = serve();
  Interpreter main = server->open();
  EXPECT_EQ(main.execute("import io, sys\nsys.stdout = io.StringIO()\nprint('kept')").output, "");
  EXPECT_EQ(main.execute("isinstance(sys.stdout, io.StringIO)").result, "False");
  EXPECT_EQ(main.execute("sys.stdout.close()\nprint('after close')").output, "after close\n");
  EXPECT_EQ(error_of([&] { main.execute("sys.stdout = None\nraise ValueError('x')"); }).code(),
            ErrorCode::kScriptError);
  EXPECT_EQ(main.execute("print('back')").output, "back\n");
}

TEST_P(PythonScripts, NothingAScriptPrintsReachesTheServersOwnStdout) {
  auto server = serve();
  Interpreter main = server->open();
  ::testing::internal::CaptureStdout();
  Execution run = main.execute(
      "import sys\nprint('to the caller', flush=True)\n"
      "class Loud:\n    def __del__(self):\n        print('deleted', flush=True)\n"
      "kept = Loud()");
  server->client().destroy_interpreter(server->server.address(), kProviderId, "main");
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "");
  EXPECT_EQ(run.output, "to the caller\n");
}

TEST_P(PythonScripts, ReadingStdinFindsItsEnd) {
  auto server = serve();
  Error error = error_of([&] { server->open().execute("input()"); });
  EXPECT_EQ(error.code(), ErrorCode::kScriptError);
  EXPECT_TRUE(contains(error.what(), "EOFError")) << error.what();
}

TEST_P(PythonScripts, ASyntaxErrorNamesItselfAndItsLine) {
  auto server = serve();
  Interpreter main = server->open();
  Error error = error_of([&] { main.execute("x = 1\ny = = 2"); });
  EXPECT_EQ(error.code(), ErrorCode::kScriptError);
  EXPECT_TRUE(contains(error.what(), "interpreter \"main\": ")) << error.what();
  EXPECT_TRUE(contains(error.what(), "SyntaxError: invalid syntax")) << error.what();
  EXPECT_TRUE(contains(error.what(), "line 2")) << error.what();
  error = error_of([&] { main.execute("x = 1\n\xff\xfe = 2"); });  // not UTF-8
  EXPECT_EQ(error.code(), ErrorCode::kScriptError);
  EXPECT_TRUE(contains(error.what(), "SyntaxError")) << error.what();
}

TEST_P(PythonScripts, AnExceptionNamesItsTypeItsMessageAndTheLinesOfItsTraceback) {
  auto server = serve();
  Interpreter main = server->open();
  Error error = error_of([&] { main.execute("x = 1\n\nx / 0"); });
  EXPECT_EQ(error.code(), ErrorCode::kScriptError);
  EXPECT_TRUE(contains(error.what(), "ZeroDivisionError: division by zero")) << error.what();
  EXPECT_TRUE(contains(error.what(), "line 3")) << error.what();
  error =
      error_of([&] { main.execute("def check(v):\n    raise ValueError(f'bad {v}')\ncheck(7)"); });
  EXPECT_TRUE(contains(error.what(), "ValueError: bad 7")) << error.what();
  EXPECT_TRUE(contains(error.what(), "line 2, in check")) << error.what();
  EXPECT_TRUE(contains(error.what(), "line 3, in <module>")) << error.what();
  EXPECT_FALSE(contains(error.what(), "dango-script-runner")) << error.what();
}

TEST_P(PythonScripts, DeepRecursionAndRunningOutOfMemoryAreScriptErrors) {
  auto server = serve();
  Interpreter main = server->open();
  Error error = error_of([&] { main.execute("def f(n):\n    return f(n + 1)\nf(0)"); });
  EXPECT_EQ(error.code(), ErrorCode::kScriptError);
  EXPECT_TRUE(contains(error.what(), "RecursionError")) << error.what();
  error = error_of([&] {
    main.execute(
        "nested = []\nfor i in range(100000):\n    nested = [nested]\n"
        "str(nested)");
  });
  EXPECT_TRUE(contains(error.what(), "RecursionError")) << error.what();
  error = error_of([&] { main.execute("raise MemoryError('too much')"); });
  EXPECT_EQ(error.code(), ErrorCode::kScriptError);
  EXPECT_TRUE(contains(error.what(), "MemoryError: too much")) << error.what();
  EXPECT_EQ(main.execute("1 + 1").result, "2");
}

TEST_P(PythonScripts, SystemExitAndKeyboardInterruptOnlyFailTheScript) {
  auto server = serve();
  Interpreter main = server->open();
  main.execute("alive = True");
  for (const char* script :
       {"import sys\nsys.exit(3)", "exit()", "raise SystemExit", "raise KeyboardInterrupt"}) {
    Error error = error_of([&] { main.execute(script); });
    EXPECT_EQ(error.code(), ErrorCode::kScriptError) << script;
    EXPECT_TRUE(contains(error.what(), "SystemExit") || contains(error.what(), "KeyboardInterrupt"))
        << error.what();
  }
  EXPECT_EQ(main.execute("alive").result, "True");
}

TEST_P(PythonScripts, LoopsThatCatchTheTimeLimitAreStoppedAndTheInterpreterServesOn) {
  auto server = serve({python("main", 200ms)});
  Interpreter main = server->open();
  main.execute("count = 0");
  const char* loops[] = {
      "while True:\n    count += 1",
      "while True:\n    try:\n        while True:\n            pass\n"
      "    except BaseException:\n        pass",
      "def inner():\n    while True:\n        try:\n            while True:\n                pass\n"
      "        except BaseException:\n            pass\n"
      "while True:\n    try:\n        inner()\n    except BaseException:\n        pass",
      "while True:\n    try:\n        while True:\n            pass\n    finally:\n        "
      "continue",
  };
  for (const char* loop : loops) {
    Error error = error_of([&] { main.execute(loop); });
    EXPECT_EQ(error.code(), ErrorCode::kTimeLimit) << loop;
    EXPECT_EQ(std::string(error.what()), "interpreter \"main\": time limit exceeded");
  }
  EXPECT_NE(main.execute("count").result, "0");  // what the first loop did is kept
  EXPECT_EQ(main.execute("sum(range(1000))").result, "499500");
}

TEST(PythonLanguage, AMemoryLimitIsAConfigErrorNamingTheKey) {
  rpc::Engine engine{"tcp://127.0.0.1:0"};
  try {
    InterpreterConfig limited = python("main");
    limited.memory_limit = 64 << 20;
    Provider provider(engine, kProviderId, {.interpreters = {limited}});
    ADD_FAILURE() << "accepted a memory limit";
  } catch (const ConfigError& e) {
    EXPECT_TRUE(contains(e.what(), "interpreters[0].memory_limit")) << e.what();
    EXPECT_TRUE(contains(e.what(), "python")) << e.what();
  }
}

TEST_P(PythonScripts, TwoInterpretersRunTheirScriptsAtTheSameTime) {
  auto server = serve({python("a"), python("b")});
  Interpreter a = server->open("a"), b = server->open("b");
  // Each script waits at a barrier for the other (through the runtime both share): it passes
  // only if the two run at once, and fails with BrokenBarrierError after 5 s otherwise.
  const std::string meet =
      "import sys, threading\n"
      "barrier = sys.__dict__.setdefault('dango_test_barrier', threading.Barrier(2))\n"
      "barrier.wait(timeout=5)\n"
      "'met'";
  std::vector<std::string> results(2);
  std::vector<thread::Ult> callers;
  for (int i = 0; i < 2; ++i) {
    callers.push_back(server->engine().rpc_pool().spawn([&, i] {
      try {
        results[i] = (i == 0 ? a : b).execute(meet).result;
      } catch (const Error& e) {
        results[i] = e.what();
      }
    }));
  }
  for (auto& caller : callers) caller.join();
  EXPECT_EQ(results, (std::vector<std::string>{"met", "met"}));
  a.execute("import sys\ndel sys.dango_test_barrier");
}

INSTANTIATE_TEST_SUITE_P(Transports, PythonScripts, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "self" : "tcp";
                         });

}  // namespace
}  // namespace dango::script
