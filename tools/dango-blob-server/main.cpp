// dango-blob-server: serves a blob provider (dango::blob::Provider) on one address.
//
//   dango-blob-server --config provider.json [--address tcp://127.0.0.1:0] [--provider-id 1]
//                     [--address-file FILE]
//
// provider.json holds blob::ProviderOptions ({"targets": [...], "inline_threshold": ...}). Once
// it serves, the server writes its address to --address-file (through a rename, so a reader
// never sees half of it) or to stdout. It stops cleanly on SIGTERM or SIGINT (targets closed,
// files kept), and exits with 1 and a message naming the problem when the config is bad.

#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "dango/dango.hpp"
#include "dango/services/blob/provider.hpp"

namespace {

void write_atomically(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << text << '\n';
    if (!out.flush()) throw std::runtime_error("cannot write " + temporary);
  }
  std::filesystem::rename(temporary, path);
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return nlohmann::json::parse(in);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dango-blob-server: serves a Dango blob provider"};
  std::string address = "tcp://127.0.0.1:0";
  std::string config_file;
  std::string address_file;
  uint16_t provider_id = 1;
  app.add_option("--config", config_file, "JSON file with the provider's options")->required();
  app.add_option("--address", address, "address to listen on (default tcp://127.0.0.1:0)");
  app.add_option("--provider-id", provider_id, "provider id (default 1)");
  app.add_option("--address-file", address_file, "file to write the address to (default stdout)");
  CLI11_PARSE(app, argc, argv);

  // SIGTERM and SIGINT are taken by a thread of their own (blocked everywhere else, before any
  // other thread starts), which raises a flag; a ULT of the engine sees it and finalizes. (Not
  // finalize() from that thread: a signal landing before main() is in wait_for_finalize() would
  // have it finalize from a foreign thread that does not run the engine.)
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  try {
    const auto options = dango::blob::ProviderOptions::from_json(read_json(config_file));
    dango::Engine engine{address};
    dango::blob::Provider provider{engine, provider_id, options};
    std::atomic<bool> stop_requested{false};
    std::thread stopper([&] {
      int signal = 0;
      sigwait(&stop_signals, &signal);
      stop_requested = true;
    });
    engine.rpc_pool()
        .spawn([&] {
          try {
            while (!stop_requested && !engine.finalized()) {
              dango::thread::this_ult::sleep_for(std::chrono::milliseconds(50));
            }
            if (stop_requested) engine.finalize();
          } catch (const dango::ShutdownError&) {  // finalized otherwise
          }
        })
        .detach();
    if (address_file.empty()) {
      std::printf("%s\n", engine.address().c_str());
      std::fflush(stdout);
    } else {
      write_atomically(address_file, engine.address());
    }
    engine.wait_for_finalize();
    // finalized by a signal, or by something else: wake the stopper in either case
    pthread_kill(stopper.native_handle(), SIGTERM);
    stopper.join();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dango-blob-server: %s\n", e.what());
    return 1;
  }
  return 0;
}
