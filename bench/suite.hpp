#pragma once
// The dango-bench framework: a registry of suites, the options every suite receives, the Record
// a suite reports (always next to a baseline measured in the same run), the Reporter that prints
// them (a table for people, a JSON array with --json), statistics and clock helpers, and helper
// processes (the bench binary re-exec'd as a server, so networked baselines cross real processes).
//
// Adding a suite is one file in bench/ with one registration line:
//   void run_rpc(const dango::bench::Options& options, dango::bench::Reporter& reporter);
//   DANGO_REGISTER_BENCH_SUITE(rpc, run_rpc);

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dango::bench {

// What the command line asks of every suite.
struct Options {
  bool quick = false;  // --quick: a short version of each suite (< 20 s), less stable numbers
  bool json = false;   // --json: stdout holds only a JSON array of records, nothing else
  std::vector<std::string> transports{"tcp"};  // --transports tcp,sm: transports to measure
  std::string output{};  // --output FILE: also write the JSON array there ("" = don't)
};

// One measurement. `ratio` is value / baseline_value (so > 1 means "more than the baseline":
// slower for a latency, faster for a bandwidth); left empty, Reporter::add computes it (1 when
// there is no baseline). Every field has a default, so build it with designated initializers:
//   reporter.add({.transport = "tcp", .case_name = "latency_median", .value = 12.3, .unit = "us",
//                 .baseline = "tcp_pingpong_poll", .baseline_value = 9.1});
struct Record {
  std::string suite{};      // filled by Reporter::add with the running suite when empty
  std::string transport{};  // "tcp", "sm", ...; "" when no transport is involved
  std::string case_name{};  // "case" in JSON, e.g. "latency_median"
  std::uint64_t size = 0;   // bytes; 0 when not applicable
  double value = 0;
  std::string unit{};         // "us", "ns", "GiB/s", "ops/s", ...
  std::string baseline{};     // name of the baseline compared against; "" for none
  double baseline_value = 0;  // the baseline's value measured in the same run
  std::optional<double> ratio{};
  std::map<std::string, std::string> extra{};  // extra string fields ("backend", "target", ...)
};

// Collects the records of a run and prints them: in table mode, one aligned table per suite at
// each flush(); in JSON mode, one array of every record at finish().
class Reporter {
 public:
  explicit Reporter(const Options& options) : options_(options) {}

  // Adds a record: fills its suite (when empty) and its ratio (when unset).
  void add(Record record);
  // Called by the driver before each suite; the name fills Record::suite.
  void begin_suite(std::string_view name) { suite_ = name; }
  // Table mode: prints the records added since the last flush as one table. No-op in JSON mode.
  void flush(std::ostream& out);
  // JSON mode: prints the array of every record to `out`. Writes Options::output in both modes.
  // Throws std::runtime_error when the output file cannot be written.
  void finish(std::ostream& out);
  // Every record added so far.
  const std::vector<Record>& records() const { return records_; }

 private:
  const Options& options_;
  std::string suite_;
  std::vector<Record> records_;
  std::size_t flushed_ = 0;
};

// Prints `records` as an aligned table (used by Reporter::flush).
void print_table(std::ostream& out, const std::vector<Record>& records);
// Writes `records` as a JSON array of objects, one per line.
void write_json(std::ostream& out, const std::vector<Record>& records);
// "64B", "4KiB", "16MiB", "1.5KiB"; "-" for 0.
std::string format_size(std::uint64_t bytes);
// The sizes the environment variable `variable` names (bytes, comma-separated: "4096,65536"),
// or `defaults` when it is unset or empty; std::runtime_error naming the variable when it
// holds anything else.
std::vector<std::size_t> sizes_from_env(const char* variable, std::vector<std::size_t> defaults);

// ---- suite registry ---------------------------------------------------------------------------

// A suite measures what it is about and adds records (each with its baseline) to the reporter.
// It may throw; the driver reports the error and carries on with the next suite.
using SuiteFunction = std::function<void(const Options&, Reporter&)>;

// Registers a suite under `name`; called at static-initialisation time by the macro below.
// Returns true so that it can initialise a static. Aborts on a duplicate name.
bool register_suite(std::string_view name, SuiteFunction function);
// Every registered suite, ordered by name.
const std::map<std::string, SuiteFunction, std::less<>>& suites();

// Registers function `function` as the suite `name` (an identifier: `dango-bench name`).
#define DANGO_REGISTER_BENCH_SUITE(name, function)                           \
  [[maybe_unused]] static const bool dango_bench_suite_##name##_registered = \
      ::dango::bench::register_suite(#name, function)

// ---- statistics and clock ---------------------------------------------------------------------

using Clock = std::chrono::steady_clock;

// Nanoseconds on the monotonic clock since an arbitrary epoch (~20 ns per call).
inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// CPU time (user + system) this process has used so far, every thread counted, in seconds.
inline double process_cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Measures elapsed time from construction (or restart()).
class Stopwatch {
 public:
  Stopwatch() : start_(Clock::now()) {}
  void restart() { start_ = Clock::now(); }
  double elapsed_ns() const {
    return std::chrono::duration<double, std::nano>(Clock::now() - start_).count();
  }
  double elapsed_us() const { return elapsed_ns() / 1e3; }
  double elapsed_s() const { return elapsed_ns() / 1e9; }

 private:
  Clock::time_point start_;
};

// The p-th percentile (0..100, nearest rank) of `samples`; 0 for no samples. Copies the vector.
double percentile(std::vector<double> samples, double p);
// The median of `samples` (average of the two middle values when even); 0 for no samples.
double median(std::vector<double> samples);
inline double p99(std::vector<double> samples) { return percentile(std::move(samples), 99); }
// The arithmetic mean; 0 for no samples.
double mean(const std::vector<double>& samples);

// Keeps the compiler from optimising away the computation of `value` (and pending stores).
template <typename T>
inline void do_not_optimize(const T& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

constexpr std::size_t kKiB = 1024;
constexpr std::size_t kMiB = 1024 * kKiB;
constexpr std::size_t kGiB = 1024 * kMiB;

// Bytes per `seconds` in GiB/s.
inline double gib_per_s(double bytes, double seconds) {
  return seconds > 0 ? bytes / seconds / static_cast<double>(kGiB) : 0;
}

// ---- helper processes -------------------------------------------------------------------------

// A helper is a side of a benchmark that must run in its own process (a server): the bench
// binary re-execs itself as `dango-bench __helper <name> args...`. It prints what its parent
// needs (e.g. its port) as lines on stdout, and must exit by itself (and have a watchdog).
// Returns the process exit code.
using HelperFunction = std::function<int(const std::vector<std::string>& args)>;

// Registers a helper at static-initialisation time; returns true. Aborts on a duplicate name.
bool register_helper(std::string_view name, HelperFunction function);
#define DANGO_REGISTER_BENCH_HELPER(name, function)                           \
  [[maybe_unused]] static const bool dango_bench_helper_##name##_registered = \
      ::dango::bench::register_helper(#name, function)

// The hidden command under which a helper runs.
constexpr std::string_view kHelperCommand = "__helper";
// Runs helper argv[2] with argv[3...] when argv[1] is kHelperCommand; nullopt otherwise.
// Called first thing by main().
std::optional<int> run_helper_if_requested(int argc, char** argv);

// A running helper process (this binary re-exec'd through /proc/self/exe), owned RAII: the
// destructor kills it (SIGKILL) and reaps it unless it was already reaped by wait_exit().
// The child also gets SIGKILL if the creating thread dies (PR_SET_PDEATHSIG), so create it from
// a thread that outlives it.
class HelperProcess {
 public:
  // Starts helper `name` with `args`; throws std::runtime_error if fork/exec fails.
  HelperProcess(std::string_view name, const std::vector<std::string>& args = {});
  ~HelperProcess();
  HelperProcess(const HelperProcess&) = delete;
  HelperProcess& operator=(const HelperProcess&) = delete;

  // Reads one line of the helper's stdout (without '\n'); throws std::runtime_error on timeout
  // or when the helper closes stdout first.
  std::string read_line(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Waits for the helper to exit by itself; returns its exit code (128+signal when killed by a
  // signal), or nullopt on timeout (the helper is then still running, and the destructor kills
  // it). Once reaped, returns the same code again.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::optional<int> exit_code_;
  std::string pending_;  // bytes read past the last returned line
};

}  // namespace dango::bench
