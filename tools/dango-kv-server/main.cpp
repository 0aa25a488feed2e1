// dango-kv-server: serves one kv::Provider from a JSON file of its options
// ({"databases": [...], "max_key_size": ...}); see tools/common/serve_provider.hpp for the
// command line, signals and exit codes.

#include "common/serve_provider.hpp"
#include "dango/services/kv/provider.hpp"

int main(int argc, char** argv) {
  return dango::tools::serve_provider_main<dango::kv::Provider, dango::kv::ProviderOptions>(
      argc, argv, "dango-kv-server", "serves key/value databases from a JSON config");
}
