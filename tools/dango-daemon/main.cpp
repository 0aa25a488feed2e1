// dango-daemon: runs one Dango process described by a JSON file (DESIGN.md "Configuration").
//
//   dango-daemon -c config.json [--module-path DIR:DIR] [--address-file PATH]
//   dango-daemon -c - < config.json
//
// Exit codes: 0 after a clean stop (SIGINT, SIGTERM or `dango-ctl shutdown`), 2 for an invalid
// configuration (one message naming the key, before anything starts), 1 for any other failure.

#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "dango/common/error.hpp"
#include "dango/compose/module.hpp"
#include "dango/compose/process.hpp"

namespace {

constexpr int kConfigErrorExit = 2;

std::string read_config(const std::string& source) {
  if (source == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), {});
  }
  std::ifstream in(source);
  if (!in) throw dango::ConfigError(source + ": cannot read the configuration file");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Writes `text` through a temporary file and a rename: a launch script polling for the file
// never reads half an address.
void write_atomically(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << text << '\n';
    if (!out.flush()) throw dango::Error("cannot write the address file " + temporary);
  }
  std::filesystem::rename(temporary, path);
}

// SIGINT/SIGTERM are blocked in every thread (before any is created) and taken by one thread
// with sigwait, which asks the process to stop: no work in a signal handler. A signal that
// arrives while the process starts stays pending until the watcher runs.
sigset_t stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  return signals;
}

class SignalWatcher {
 public:
  explicit SignalWatcher(dango::compose::Process& process)
      : thread_([this, &process] {
          const sigset_t signals = stop_signals();
          int signal = 0;
          sigwait(&signals, &signal);
          if (!done_.load()) {
            std::fprintf(stderr, "dango-daemon: %s received, stopping\n", strsignal(signal));
            process.request_stop();
          }
        }) {}
  // Wakes the watcher with a signal of its own (blocked, so it only reaches sigwait).
  ~SignalWatcher() {
    done_.store(true);
    pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dango-daemon: runs a Dango process built from a JSON description"};
  std::string config_source;
  std::string module_path;
  std::string address_file;
  app.add_option("-c,--config", config_source, "JSON configuration file, or - for stdin")
      ->required();
  app.add_option("--module-path", module_path,
                 "directories searched for modules not linked in (DIR:DIR), before "
                 "DANGO_MODULE_PATH");
  app.add_option("--address-file", address_file,
                 "file to write the process's address to once it serves");
  CLI11_PARSE(app, argc, argv);

  std::vector<std::string> path = dango::compose::split_module_path(module_path);
  if (const char* env = std::getenv("DANGO_MODULE_PATH")) {
    for (auto& dir : dango::compose::split_module_path(env)) path.push_back(dir);
  }
  const sigset_t signals = stop_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::optional<dango::compose::ProcessConfig> config;
  try {
    config = dango::compose::ProcessConfig::parse(read_config(config_source), path);
  } catch (const dango::ConfigError& e) {
    std::fprintf(stderr, "dango-daemon: invalid configuration: %s\n", e.what());
    return kConfigErrorExit;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dango-daemon: %s\n", e.what());
    return 1;
  }
  try {
    dango::compose::Process process{std::move(*config), {.module_path = path}};
    SignalWatcher watcher{process};
    if (!address_file.empty()) write_atomically(address_file, process.address());
    std::fprintf(stderr, "dango-daemon: serving at %s\n", process.address().c_str());
    process.wait();
    process.stop();
  } catch (const dango::ConfigError& e) {
    std::fprintf(stderr, "dango-daemon: invalid configuration: %s\n", e.what());
    return kConfigErrorExit;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dango-daemon: %s\n", e.what());
    return 1;
  }
  return 0;
}
