// dango-blob-server: serves one blob::Provider from a JSON file of its options
// ({"targets": [...], "inline_threshold": ...}); see tools/common/serve_provider.hpp for the
// command line, signals and exit codes.

#include "common/serve_provider.hpp"
#include "dango/services/blob/provider.hpp"

int main(int argc, char** argv) {
  return dango::tools::serve_provider_main<dango::blob::Provider, dango::blob::ProviderOptions>(
      argc, argv, "dango-blob-server", "serves a Dango blob provider");
}
