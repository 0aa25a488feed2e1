// dango-kv-server: serves one kv::Provider from a JSON config file (ProviderOptions:
// {"databases": [...], "max_key_size": ...}) on --address (default tcp://127.0.0.1:0). Writes
// the listening address to --address-file (or stdout) once it serves; stops cleanly on SIGTERM or
// SIGINT (databases closed, stores flushed); with --stop-with-parent also when its parent dies.

#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>

#include "dango/dango.hpp"
#include "dango/services/kv/provider.hpp"

namespace {

// Through a temporary file and a rename, so a reader polling for the file never sees half of it.
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
  if (!in) throw std::runtime_error("cannot read " + path);
  return nlohmann::json::parse(in);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dango-kv-server: serves key/value databases from a JSON config"};
  std::string address = "tcp://127.0.0.1:0";
  std::string address_file;
  std::string config_file;
  uint16_t provider_id = 1;
  app.add_option("--config", config_file, "JSON file of the provider's options")->required();
  app.add_option("--address", address, "address to listen on (default tcp://127.0.0.1:0)");
  app.add_option("--address-file", address_file, "file to write the address to (default stdout)");
  app.add_option("--provider-id", provider_id, "the provider's id (default 1)");
  bool stop_with_parent = false;
  app.add_flag("--stop-with-parent", stop_with_parent,
               "stop (as on SIGTERM) when the process that started this one dies (for tests)");
  CLI11_PARSE(app, argc, argv);

  // Signals are taken by one thread with sigwait, never by a handler interrupting a ULT.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);  // sent by main itself to end the waiting thread
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  if (stop_with_parent) prctl(PR_SET_PDEATHSIG, SIGTERM);

  try {
    const auto options = dango::kv::ProviderOptions::from_json(read_json(config_file));
    dango::Engine engine{address};
    std::thread waiter;
    {
      dango::kv::Provider provider(engine, provider_id, options);
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
    std::fprintf(stderr, "dango-kv-server: %s\n", e.what());
    return 1;
  }
  return 0;
}
