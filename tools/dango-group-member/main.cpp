// dango-group-member: runs one group member agent until SIGTERM (leaves the group, exits 0) or
// SIGKILL. Used by the multi-process tests (tests/services/group/) and by hand:
//
//   dango-group-member --config member.json [--address tcp://127.0.0.1:0] [--bootstrap B]
//                      [--address-file A] [--events-file E]
//
// member.json: {"address": "tcp://127.0.0.1:0", "group": {<GroupOptions, see options.hpp>}}
// (--address overrides "address", --bootstrap the group's "bootstrap": e.g.
// `mpirun -np 4 dango-group-member --config member.json --bootstrap mpi`). Once a member, it writes
// its address to --address-file (atomically); each observer event is appended to --events-file as a
// line
// "<join|leave|death> <address> <incarnation>". Test-only fault injection: with a
// "fault+tcp://..." address, SIGUSR1 starts dropping every message in and out, SIGUSR2 stops.

#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "dango/common/config.hpp"
#include "dango/dango.hpp"
#include "dango/net/fault.hpp"
#include "dango/services/group/provider.hpp"

namespace {

std::atomic<bool> g_terminate{false};

void on_terminate(int) { g_terminate.store(true); }
void on_drop_start(int) { dango::net::fault::set_dropping(true); }
void on_drop_stop(int) { dango::net::fault::set_dropping(false); }

void install_signal_handlers() {
  struct sigaction action {};
  sigemptyset(&action.sa_mask);
  action.sa_handler = on_terminate;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  action.sa_handler = on_drop_start;
  sigaction(SIGUSR1, &action, nullptr);
  action.sa_handler = on_drop_stop;
  sigaction(SIGUSR2, &action, nullptr);
}

void write_atomically(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << text << '\n';
    if (!out.flush()) throw std::runtime_error("cannot write " + temporary);
  }
  std::filesystem::rename(temporary, path);
}

// Appends one line per event; each line is one write of a small buffer with O_APPEND, so a
// reader never sees half a line.
void append_line(const std::string& path, const std::string& line) {
  std::FILE* file = std::fopen(path.c_str(), "a");
  if (file == nullptr) return;
  std::fputs((line + "\n").c_str(), file);
  std::fclose(file);
}

struct MemberConfig {
  std::string address = "tcp://127.0.0.1:0";
  dango::group::GroupOptions group;
};

MemberConfig read_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw dango::ConfigError(path + ": cannot open");
  nlohmann::json json;
  try {
    in >> json;
  } catch (const nlohmann::json::exception& e) {
    throw dango::ConfigError(path + ": invalid JSON: " + e.what());
  }
  dango::config::ConfigReader reader(json, "");
  MemberConfig config;
  reader.get("address", config.address);
  nlohmann::json group;
  reader.require("group", group);
  reader.finish();
  config.group = dango::group::GroupOptions::from_json(group, "group");
  return config;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dango-group-member: one member of a Dango group"};
  std::string config_path, address, bootstrap, address_file, events_file;
  app.add_option("--config", config_path, "JSON: {\"address\": ..., \"group\": {...}}")->required();
  app.add_option("--address", address, "address to listen on (overrides the config's)");
  app.add_option("--bootstrap", bootstrap, "bootstrap method (overrides the config's)");
  app.add_option("--address-file", address_file, "file to write the address to once a member");
  app.add_option("--events-file", events_file, "file to append observer events to");
  CLI11_PARSE(app, argc, argv);

  install_signal_handlers();
  try {
    MemberConfig config = read_config(config_path);
    if (!address.empty()) config.address = address;
    if (!bootstrap.empty()) {
      config.group.bootstrap = bootstrap;
      config.group.validate("group");
    }
    dango::Engine engine{config.address};
    {
      dango::group::Observer record_event;
      if (!events_file.empty()) {
        record_event = [&events_file](const dango::group::Event& event) {
          append_line(events_file, std::string(dango::group::swim::to_string(event.kind)) + " " +
                                       event.member.address + " " +
                                       std::to_string(event.member.incarnation));
        };
      }
      dango::group::Provider member{engine, config.group, record_event};
      if (!address_file.empty()) {
        write_atomically(address_file, engine.address());
      } else {
        std::printf("%s\n", engine.address().c_str());
        std::fflush(stdout);
      }
      engine.rpc_pool()
          .spawn([&] {
            while (!g_terminate.load()) {
              dango::thread::this_ult::sleep_for(std::chrono::milliseconds(10));
            }
            member.leave();
          })
          .join();
    }
    engine.finalize();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dango-group-member: %s\n", e.what());
    return 1;
  }
  return 0;
}
