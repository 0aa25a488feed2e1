// Multi-process tests of dango-daemon and dango-ctl: real daemons started from configs (test
// modules loaded from build/lib), administered by the real dango-ctl, stopped by signals or
// by `dango-ctl shutdown`. Every daemon is killed and reaped by a guard if a test fails.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <thread>

#include "compose_test_util.hpp"
#include "dango/dango.hpp"
#include "rpc/rpc_test_util.hpp"

namespace dango::compose {
namespace {

using namespace testing;

class Daemons : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& program :
         {bin("dango-daemon"), bin("dango-ctl"), module_dir() + "/libdango-module-counter.so"}) {
      if (::access(program.c_str(), R_OK) != 0) GTEST_SKIP() << program << " is not built";
    }
  }
  TempDir dir_;
};

nlohmann::json counter_and_relay(const std::string& journal = "") {
  return {
      {"transport", "tcp://127.0.0.1:0"},
      {"providers",
       {{{"name", "r"}, {"type", "relay"}, {"provider_id", 2}, {"dependencies", {{"target", "c"}}}},
        {{"name", "c"},
         {"type", "counter"},
         {"provider_id", 1},
         {"config", {{"start", 5}, {"journal", journal}}}}}}};
}

int64_t call_add(Engine& client, const std::string& address, const char* rpc, ProviderId id,
                 int64_t n) {
  return client.rpc<int64_t(int64_t)>(rpc).on(client.lookup(address)).with(id)(n);
}

TEST_F(Daemons, DaemonServesItsProvidersAndCtlQueriesAndListsThem) {
  Daemon daemon(dir_, "one", counter_and_relay());
  ASSERT_EQ(daemon.address().rfind("tcp://127.0.0.1:", 0), 0u) << daemon.address();
  {
    Engine client{"tcp"};
    EXPECT_EQ(call_add(client, daemon.address(), "relay.add", 2, 10), 15);
    EXPECT_EQ(call_add(client, daemon.address(), "counter.add", 1, 1), 16);
  }
  auto query = ctl(dir_, {"query", daemon.address()});
  ASSERT_EQ(query.code, 0) << query.err;
  auto config = nlohmann::json::parse(query.out);
  EXPECT_EQ(config["transport"], daemon.address());
  ASSERT_EQ(config["providers"].size(), 2u);
  EXPECT_EQ(config["providers"][0]["name"], "c");  // started first: r depends on it
  EXPECT_EQ(config["providers"][0]["config"]["start"], 5);
  EXPECT_EQ(config["providers"][1]["resolved_dependencies"]["target"][0]["address"],
            daemon.address());

  auto list = ctl(dir_, {"list-providers", daemon.address()});
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_EQ(
      nlohmann::json::parse(list.out),
      nlohmann::json::parse(R"([{"name":"c","type":"counter","provider_id":1,"pool":"__primary__"},
                                      {"name":"r","type":"relay","provider_id":2,"pool":"__primary__"}])"));

  auto shutdown = ctl(dir_, {"shutdown", daemon.address()});
  EXPECT_EQ(shutdown.code, 0) << shutdown.err;
  EXPECT_EQ(daemon.process().wait_exit(), 0) << daemon.process().err();
}

TEST_F(Daemons, ConfigOnStdinIsAccepted) {
  const std::string address_file = dir_.file("stdin.address");
  Program daemon(bin("dango-daemon"),
                 {"-c", "-", "--address-file", address_file, "--module-path", module_dir()}, dir_,
                 counter_and_relay().dump());
  ASSERT_TRUE(rpc::testing::eventually([&] { return std::filesystem::exists(address_file); }))
      << daemon.err();
  std::string address = read_file(address_file);
  address.pop_back();
  auto list = ctl(dir_, {"list-providers", address});
  EXPECT_EQ(nlohmann::json::parse(list.out).size(), 2u) << list.err;
  daemon.kill(SIGINT);
  EXPECT_EQ(daemon.wait_exit(), 0) << daemon.err();
}

TEST_F(Daemons, SigtermStopsProvidersInReverseOrderAndDumpsMonitoring) {
  const std::string journal = dir_.file("journal");
  auto config = counter_and_relay(journal);
  config["providers"].push_back({{"name", "last"},
                                 {"type", "counter"},
                                 {"config", {{"journal", journal}}},
                                 {"dependencies", {{"after", {"r"}}}}});
  config["monitoring"] = {{"dump", dir_.file("stats.json")}};
  Daemon daemon(dir_, "term", config);
  {
    Engine client{"tcp"};
    EXPECT_EQ(call_add(client, daemon.address(), "relay.add", 2, 1), 6);
  }
  daemon.process().kill(SIGTERM);
  EXPECT_EQ(daemon.process().wait_exit(), 0) << daemon.process().err();
  EXPECT_EQ(read_file(journal), "start c\nstart last\nstop last\nstop c\n");
  auto stats = nlohmann::json::parse(read_file(dir_.file("stats.json")));
  bool relay_seen = false;
  for (const auto& entry : stats["server"]) {
    relay_seen |= entry["labels"]["rpc"] == "relay.add" && entry["requests"]["ok"] == 1;
  }
  EXPECT_TRUE(relay_seen) << stats["server"].dump(2);
}

TEST_F(Daemons, ProviderIsAddedAndRemovedWhileAClientUsesAnother) {
  Daemon daemon(dir_, "live", counter_and_relay());
  Engine client{"tcp"};
  std::atomic<bool> done{false};
  Result add, add_again, remove, remove_missing, remove_used;
  std::thread admin([&] {
    add = ctl(
        dir_,
        {"add-provider", daemon.address(),
         R"({"name": "extra", "type": "counter", "provider_id": 7, "config": {"start": 100}})"});
    add_again =
        ctl(dir_, {"add-provider", daemon.address(), R"({"name": "extra", "type": "counter"})"});
    remove_used = ctl(dir_, {"remove-provider", daemon.address(), "c"});
    remove = ctl(dir_, {"remove-provider", daemon.address(), "extra"});
    remove_missing = ctl(dir_, {"remove-provider", daemon.address(), "extra"});
    done = true;
  });
  int64_t expected = 5, calls = 0;
  while (!done) {  // the client keeps using "c" through every change
    expected += 1;
    ASSERT_EQ(call_add(client, daemon.address(), "counter.add", 1, 1), expected);
    ++calls;
  }
  admin.join();
  EXPECT_GT(calls, 0);
  ASSERT_EQ(add.code, 0) << add.err;
  EXPECT_EQ(nlohmann::json::parse(add.out)["config"]["start"], 100);
  EXPECT_EQ(add_again.code, 2);
  EXPECT_NE(add_again.err.find("provider.name: duplicate provider name \"extra\""),
            std::string::npos)
      << add_again.err;
  EXPECT_EQ(remove_used.code, 2);
  EXPECT_NE(remove_used.err.find("\"c\" is a dependency of \"r\""), std::string::npos)
      << remove_used.err;
  EXPECT_EQ(remove.code, 0) << remove.err;
  EXPECT_EQ(remove_missing.code, 2);
  EXPECT_NE(remove_missing.err.find("no provider named \"extra\""), std::string::npos);
  EXPECT_THROW(call_add(client, daemon.address(), "counter.add", 7, 1), RemoteError);
  // Added again at run time, it serves at once.
  auto add_back = ctl(dir_, {"add-provider", daemon.address(),
                             R"({"name": "extra", "type": "counter", "provider_id": 7})"});
  ASSERT_EQ(add_back.code, 0) << add_back.err;
  EXPECT_EQ(call_add(client, daemon.address(), "counter.add", 7, 3), 3);
}

TEST_F(Daemons, RemoteDependenciesResolveToTheProcessServingThem) {
  nlohmann::json storage = {
      {"providers", {{{"name", "c"}, {"type", "counter"}, {"provider_id", 3}}}}};
  Daemon a(dir_, "a", storage);
  nlohmann::json front = {
      {"providers",
       {{{"name", "r"}, {"type", "relay"}, {"dependencies", {{"target", "c@" + a.address()}}}}}}};
  Daemon b(dir_, "b", front);
  Daemon c(dir_, "c", front);
  Engine client{"tcp"};
  EXPECT_EQ(call_add(client, b.address(), "relay.add", 1, 2), 2);
  EXPECT_EQ(call_add(client, c.address(), "relay.add", 1, 3), 5);
  EXPECT_EQ(client.rpc<int64_t()>("counter.get").on(client.lookup(a.address())).with(3)(), 5);
  auto query = ctl(dir_, {"query", b.address()});
  auto resolved =
      nlohmann::json::parse(query.out)["providers"][0]["resolved_dependencies"]["target"][0];
  EXPECT_EQ(resolved["address"], a.address());
  EXPECT_EQ(resolved["provider_id"], 3);
  EXPECT_EQ(resolved["local"], false);
  auto shutdown = ctl(dir_, {"shutdown", b.address(), c.address(), a.address()});
  EXPECT_EQ(shutdown.code, 0) << shutdown.err;
  for (Daemon* d : {&a, &b, &c}) EXPECT_EQ(d->process().wait_exit(), 0);
}

TEST_F(Daemons, UnresolvableRemoteDependencyFailsTheStartWithTheKey) {
  nlohmann::json config = {{"providers",
                            {{{"name", "r"},
                              {"type", "relay"},
                              {"dependencies", {{"target", "c@tcp://127.0.0.1:1"}}}}}}};
  Daemon storage(dir_, "storage", {{"providers", nlohmann::json::array()}});
  config["providers"][0]["dependencies"]["target"] = "c@" + storage.address();
  write_file(dir_.file("bad.json"), config.dump());
  auto result =
      run(bin("dango-daemon"), {"-c", dir_.file("bad.json"), "--module-path", module_dir()}, dir_);
  EXPECT_EQ(result.code, 2);
  EXPECT_NE(result.err.find("providers[0].dependencies.target: \"c@" + storage.address() +
                            "\": no provider named \"c\" at " + storage.address()),
            std::string::npos)
      << result.err;
}

TEST_F(Daemons, StatsPrintsATableOfTheRpcsServed) {
  auto config = counter_and_relay();
  config["monitoring"] = {{"prometheus", "127.0.0.1:0"}};
  Daemon daemon(dir_, "stats", config);
  {
    Engine client{"tcp"};
    for (int i = 0; i < 3; ++i) call_add(client, daemon.address(), "counter.add", 1, 1);
  }
  auto stats = ctl(dir_, {"stats", daemon.address()});
  ASSERT_EQ(stats.code, 0) << stats.err;
  EXPECT_NE(stats.out.find("RPCs served"), std::string::npos) << stats.out;
  auto row = stats.out.find("counter.add");
  ASSERT_NE(row, std::string::npos) << stats.out;
  EXPECT_NE(stats.out.substr(row, stats.out.find('\n', row) - row).find(" 3 "), std::string::npos)
      << stats.out;
  auto json = ctl(dir_, {"stats", "--json", daemon.address()});
  EXPECT_TRUE(nlohmann::json::parse(json.out).contains("server"));
  // The Prometheus endpoint the query reports answers a plain HTTP GET.
  auto query = nlohmann::json::parse(ctl(dir_, {"query", daemon.address()}).out);
  const std::string prometheus = query["monitoring"]["prometheus"];
  ASSERT_NE(prometheus, "127.0.0.1:0");
  auto colon = prometheus.rfind(':');
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(prometheus.substr(colon + 1))));
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string request = "GET /metrics HTTP/1.0\r\nHost: " + prometheus + "\r\n\r\n";
  ASSERT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  std::string response;
  char buffer[4096];
  for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) response.append(buffer, n);
  ::close(fd);
  EXPECT_EQ(response.rfind("HTTP/1.", 0), 0u);
  EXPECT_NE(response.find("rpc=\"counter.add\""), std::string::npos) << response.substr(0, 2000);
}

TEST_F(Daemons, CtlSaysWhenAProcessIsUnreachableSilentOrNotADaemon) {
  auto refused = ctl(dir_, {"query", "tcp://127.0.0.1:1"});
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.err.find("tcp://127.0.0.1:1: unreachable"), std::string::npos) << refused.err;

  // A socket that accepts and never answers: not a Dango process (or a hung one).
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  socklen_t length = sizeof addr;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &length);
  const std::string silent = "tcp://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  auto timeout = ctl(dir_, {"--timeout-ms", "300", "list-providers", silent});
  ::close(listener);
  EXPECT_EQ(timeout.code, 1);
  EXPECT_NE(timeout.err.find(silent + ": "), std::string::npos) << timeout.err;
  EXPECT_TRUE(timeout.err.find("no answer") != std::string::npos ||
              timeout.err.find("unreachable") != std::string::npos)
      << timeout.err;

  // A Dango engine that is not a daemon.
  Engine plain{rpc::testing::server_on_own_thread()};
  auto not_daemon = ctl(dir_, {"query", plain.address()});
  EXPECT_EQ(not_daemon.code, 1);
  EXPECT_NE(not_daemon.err.find(plain.address() + ": a Dango process, but not a dango-daemon"),
            std::string::npos)
      << not_daemon.err;
  auto no_monitoring = ctl(dir_, {"stats", plain.address()});
  EXPECT_NE(no_monitoring.err.find("this process has no monitoring"), std::string::npos)
      << no_monitoring.err;
}

}  // namespace
}  // namespace dango::compose
