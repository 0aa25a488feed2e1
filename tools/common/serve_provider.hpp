#pragma once
// The main() of a program that serves one provider from a JSON file of its options
// (dango-kv-server, dango-blob-server):
//
//   prog --config provider.json [--address tcp://127.0.0.1:0] [--provider-id 1]
//        [--address-file FILE] [--stop-with-parent]
//
// Once it serves, the program writes its address to --address-file (through a rename, so a
// reader polling for the file never sees half of it) or to stdout. SIGTERM and SIGINT stop it
// cleanly (the provider is destroyed: stores flushed and closed); --stop-with-parent also stops
// it when the process that started it dies (for tests). A bad config or an unusable store ends
// it with exit code 1 and one message naming the problem. A composed service uses dango-daemon
// instead; these programs serve one component alone.

#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>

#include "dango/dango.hpp"

namespace dango::tools {

inline void write_atomically(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << text << '\n';
    if (!out.flush()) throw std::runtime_error("cannot write " + temporary);
  }
  std::filesystem::rename(temporary, path);
}

inline nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  return nlohmann::json::parse(in);
}

// Serves a ProviderT (constructible as ProviderT(engine, id, ProviderT's options)) whose
// options type OptionsT has `static OptionsT from_json(const nlohmann::json&)`.
template <class ProviderT, class OptionsT>
int serve_provider_main(int argc, char** argv, const std::string& program,
                        const std::string& description) {
  CLI::App app{program + ": " + description};
  std::string address = "tcp://127.0.0.1:0";
  std::string address_file;
  std::string config_file;
  uint16_t provider_id = 1;
  bool stop_with_parent = false;
  app.add_option("--config", config_file, "JSON file of the provider's options")->required();
  app.add_option("--address", address, "address to listen on (default tcp://127.0.0.1:0)");
  app.add_option("--address-file", address_file, "file to write the address to (default stdout)");
  app.add_option("--provider-id", provider_id, "the provider's id (default 1)");
  app.add_flag("--stop-with-parent", stop_with_parent,
               "stop (as on SIGTERM) when the process that started this one dies (for tests)");
  CLI11_PARSE(app, argc, argv);

  // Signals are taken by one thread with sigwait (blocked everywhere else, before any other
  // thread starts), never by a handler interrupting a ULT.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);  // sent by main itself to end the waiting thread
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  if (stop_with_parent) prctl(PR_SET_PDEATHSIG, SIGTERM);

  try {
    const auto options = OptionsT::from_json(read_json_file(config_file));
    Engine engine{address};
    std::thread waiter;
    {
      ProviderT provider(engine, provider_id, options);
      waiter = std::thread([&engine, signals] {
        int signal = 0;
        sigwait(&signals, &signal);
        if (signal != SIGUSR1) engine.finalize();
      });
      if (address_file.empty()) {
        std::printf("%s\n", engine.address().c_str());
        std::fflush(stdout);
      } else {
        write_atomically(address_file, engine.address());
      }
      engine.wait_for_finalize();
    }
    pthread_kill(waiter.native_handle(), SIGUSR1);
    waiter.join();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), e.what());
    return 1;
  }
  return 0;
}

}  // namespace dango::tools
