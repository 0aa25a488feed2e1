// dango-ctl: administers running dango-daemon processes through their administration RPCs.
//
//   dango-ctl query ADDRESS                  running configuration (JSON, resolved addresses)
//   dango-ctl list-providers ADDRESS         name, type, provider id, pool of each provider
//   dango-ctl add-provider ADDRESS JSON      starts a provider (JSON text, or @file)
//   dango-ctl remove-provider ADDRESS NAME   stops and removes a provider
//   dango-ctl stats ADDRESS [--json]         monitoring statistics as tables (or JSON)
//   dango-ctl shutdown ADDRESS... | --group FILE
//
// Exit codes: 0 success, 1 a process is unreachable, silent or not a daemon (or any other
// failure), 2 the daemon rejected a configuration (add-provider, remove-provider).

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "dango/common/error.hpp"
#include "dango/compose/admin.hpp"
#include "dango/compose/group_support.hpp"
#include "dango/rpc/engine.hpp"
#include "stats_table.hpp"

namespace {

using dango::compose::AdminClient;

std::string scheme_of(const std::string& address) {
  const auto pos = address.find("://");
  return pos == std::string::npos ? address : address.substr(0, pos);
}

nlohmann::json provider_json(const std::string& text) {
  std::string json_text = text;
  if (!text.empty() && text[0] == '@') {
    std::ifstream in(text.substr(1));
    if (!in) throw dango::Error(text.substr(1) + ": cannot read the provider's JSON");
    std::ostringstream all;
    all << in.rdbuf();
    json_text = all.str();
  }
  try {
    return nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::parse_error& e) {
    throw dango::ConfigError(std::string("provider JSON: ") + e.what());
  }
}

struct Command {
  std::string address;
  std::vector<std::string> addresses;  // shutdown
  std::string group_file;              // shutdown --group
  std::string argument;                // JSON or NAME
  bool json = false;                   // stats --json
};

int run(const std::string& name, const Command& cmd, std::chrono::milliseconds timeout) {
  std::vector<std::string> targets = cmd.addresses;
  if (!cmd.address.empty()) targets.insert(targets.begin(), cmd.address);
  if (!cmd.group_file.empty()) {
    const auto* group = dango::compose::group_support();
    if (group == nullptr) {
      throw dango::Error("--group: this dango-ctl has no group support (no group component)");
    }
    for (auto& member : group->read_group_file(cmd.group_file)) targets.push_back(member);
  }
  if (targets.empty()) throw dango::Error(name + ": no address given");
  dango::rpc::Engine engine{scheme_of(targets.front())};
  int status = 0;
  for (const auto& address : targets) {
    AdminClient admin(engine, address, timeout);
    if (name == "query") {
      std::printf("%s\n", admin.query().dump(2).c_str());
    } else if (name == "list-providers") {
      std::printf("%s\n", admin.list_providers().dump(2).c_str());
    } else if (name == "add-provider") {
      std::printf("%s\n", admin.add_provider(provider_json(cmd.argument)).dump(2).c_str());
    } else if (name == "remove-provider") {
      admin.remove_provider(cmd.argument);
    } else if (name == "stats") {
      auto stats = admin.stats();
      std::printf(
          "%s", cmd.json ? (stats.dump(2) + "\n").c_str() : dango::ctl::stats_table(stats).c_str());
    } else if (name == "shutdown") {
      try {
        admin.shutdown();
        std::fprintf(stderr, "dango-ctl: %s is shutting down\n", address.c_str());
      } catch (const dango::Error& e) {
        // Go on with the other members: one dead process must not keep the rest running.
        std::fprintf(stderr, "dango-ctl: %s\n", e.what());
        status = 1;
      }
    }
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dango-ctl: administers running dango-daemon processes"};
  app.require_subcommand(1);
  unsigned timeout_ms = 5000;
  app.add_option("--timeout-ms", timeout_ms, "how long to wait for each process (default 5000)");
  Command cmd;
  auto* query = app.add_subcommand("query", "print the running configuration as JSON");
  query->add_option("ADDRESS", cmd.address, "the daemon's address")->required();
  auto* list = app.add_subcommand("list-providers", "list the providers of a daemon");
  list->add_option("ADDRESS", cmd.address, "the daemon's address")->required();
  auto* add = app.add_subcommand("add-provider", "start a provider in a running daemon");
  add->add_option("ADDRESS", cmd.address, "the daemon's address")->required();
  add->add_option("JSON", cmd.argument, "the provider's entry (JSON text, or @file)")->required();
  auto* remove = app.add_subcommand("remove-provider", "stop a provider of a running daemon");
  remove->add_option("ADDRESS", cmd.address, "the daemon's address")->required();
  remove->add_option("NAME", cmd.argument, "the provider's name")->required();
  auto* stats = app.add_subcommand("stats", "print a daemon's monitoring statistics");
  stats->add_option("ADDRESS", cmd.address, "the daemon's address")->required();
  stats->add_flag("--json", cmd.json, "print the statistics as JSON");
  auto* shutdown = app.add_subcommand("shutdown", "stop daemons cleanly");
  shutdown->add_option("ADDRESS", cmd.addresses, "the daemons' addresses");
  shutdown->add_option("--group", cmd.group_file, "stop every member listed in this group file");
  CLI11_PARSE(app, argc, argv);

  const std::string name = app.get_subcommands().front()->get_name();
  try {
    return run(name, cmd, std::chrono::milliseconds(timeout_ms));
  } catch (const dango::ConfigError& e) {
    std::fprintf(stderr, "dango-ctl: rejected: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dango-ctl: %s\n", e.what());
    return 1;
  }
}
