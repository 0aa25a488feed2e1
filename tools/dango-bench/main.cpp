// dango-bench: runs benchmark suites, each side by side with a baseline measured in the same run.
//
//   dango-bench [--quick] [--json] [--transports tcp,sm] [--output FILE] <suite...|all>
//   dango-bench --list
//
// The suites come from the registry filled by bench/*.cpp (DANGO_REGISTER_BENCH_SUITE); this
// file knows none of them by name.

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "suite.hpp"

namespace {

using dango::bench::Options;
using dango::bench::Reporter;

// The suite names asked for, "all" expanded; prints an error and returns false on an unknown one.
bool resolve_suites(const std::vector<std::string>& requested, std::vector<std::string>& names) {
  const auto& registry = dango::bench::suites();
  for (const auto& name : requested) {
    if (name == "all") {
      for (const auto& [registered, function] : registry) names.push_back(registered);
    } else if (registry.contains(name)) {
      names.push_back(name);
    } else {
      std::string known;
      for (const auto& [registered, function] : registry) known += " " + registered;
      std::cerr << "dango-bench: unknown suite \"" << name << "\"; known suites:" << known
                << " (or all)\n";
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // A re-exec'd helper process (a baseline's server side) never reaches the CLI.
  if (auto code = dango::bench::run_helper_if_requested(argc, argv)) return *code;

  Options options;
  std::vector<std::string> requested;
  bool list = false;
  CLI::App app{"dango-bench: Dango benchmark suites, each next to a baseline from the same run"};
  app.add_flag("--quick", options.quick, "Short version of each suite (< 20 s each)");
  app.add_flag("--json", options.json, "Print only a JSON array of records on stdout");
  app.add_option("-t,--transports", options.transports, "Transports to measure (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("-o,--output", options.output, "Also write the JSON records to this file");
  app.add_flag("--list", list, "List the registered suites and exit");
  app.add_option("suites", requested, "Suites to run, or all");
  CLI11_PARSE(app, argc, argv);

  if (list) {
    for (const auto& [name, function] : dango::bench::suites()) std::cout << name << '\n';
    return 0;
  }
  if (requested.empty()) {
    std::cerr << "dango-bench: name the suites to run (or all); --list shows them\n";
    return 2;
  }
  std::vector<std::string> names;
  if (!resolve_suites(requested, names)) return 2;

  Reporter reporter(options);
  int failures = 0;
  for (const auto& name : names) {
    reporter.begin_suite(name);
    try {
      dango::bench::suites().find(name)->second(options, reporter);
    } catch (const std::exception& e) {
      std::cerr << "dango-bench: suite " << name << " failed: " << e.what() << '\n';
      ++failures;
    }
    reporter.flush(std::cout);
  }
  try {
    reporter.finish(std::cout);
  } catch (const std::exception& e) {
    std::cerr << "dango-bench: " << e.what() << '\n';
    return 1;
  }
  return failures == 0 ? 0 : 1;
}
