// A user adds a component without touching Dango: the build tree is installed into a
// temporary prefix, tests/compose/out_of_tree is built against it as a separate CMake
// project, and the installed dango-daemon loads the module from DANGO_MODULE_PATH.

#include <cstdlib>

#include "compose_test_util.hpp"
#include "dango/dango.hpp"
#include "rpc/rpc_test_util.hpp"

namespace dango::compose {
namespace {

using namespace testing;

// Runs a shell command line; true on exit status 0 (its output goes to `log`).
bool shell(const std::string& command, const std::string& log) {
  return std::system((command + " >>" + log + " 2>&1").c_str()) == 0;
}

TEST(OutOfTreeModule, BuiltAgainstTheInstalledPackageIsLoadedByTheDaemonFromTheModulePath) {
  TempDir dir;
  const std::string prefix = dir.file("prefix"), build = dir.file("build"), log = dir.file("log");
  std::string flags;
#if defined(__SANITIZE_ADDRESS__)
  flags = "-fsanitize=address,undefined";  // a sanitized Dango needs a sanitized module
#endif
  ASSERT_TRUE(
      shell("cmake --install " + std::string(DANGO_BINARY_DIR) + " --prefix " + prefix, log))
      << read_file(log);
  ASSERT_TRUE(shell("cmake -S " + std::string(DANGO_SOURCE_DIR) + "/tests/compose/out_of_tree -B " +
                        build + " -DCMAKE_PREFIX_PATH=" + prefix + " -DCMAKE_CXX_FLAGS='" + flags +
                        "'",
                    log))
      << read_file(log);
  ASSERT_TRUE(shell("cmake --build " + build + " -j 2", log)) << read_file(log);
  ASSERT_TRUE(std::filesystem::exists(build + "/libdango-module-greeter.so")) << read_file(log);

  const nlohmann::json config = {{"providers",
                                  {{{"name", "hi"},
                                    {"type", "greeter"},
                                    {"provider_id", 4},
                                    {"config", {{"greeting", "bonjour"}}}}}}};
  write_file(dir.file("greeter.json"), config.dump());
  const std::string address_file = dir.file("address");
  ::setenv("DANGO_MODULE_PATH", build.c_str(), 1);
  Program daemon(prefix + "/bin/dango-daemon",
                 {"-c", dir.file("greeter.json"), "--address-file", address_file}, dir);
  ::unsetenv("DANGO_MODULE_PATH");
  ASSERT_TRUE(
      rpc::testing::eventually([&] { return std::filesystem::exists(address_file); }, 20000ms))
      << daemon.err();
  std::string address = read_file(address_file);
  address.pop_back();
  {
    Engine client{"tcp"};
    auto greet = client.rpc<std::string(std::string)>("greeter.greet");
    EXPECT_EQ(greet.on(client.lookup(address)).with(4)("Dango"), "bonjour, Dango");
  }
  auto query = run(prefix + "/bin/dango-ctl", {"query", address}, dir);
  ASSERT_EQ(query.code, 0) << query.err;
  EXPECT_EQ(nlohmann::json::parse(query.out)["providers"][0]["config"]["greeting"], "bonjour");
  daemon.kill(SIGTERM);
  EXPECT_EQ(daemon.wait_exit(), 0) << daemon.err();
}

}  // namespace
}  // namespace dango::compose
