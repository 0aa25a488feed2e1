#include "suite.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

namespace dango::bench {

// ---- reporting --------------------------------------------------------------------------------

namespace {

const char* const kRecordKeys[] = {"suite", "transport", "case",           "size", "value",
                                   "unit",  "baseline",  "baseline_value", "ratio"};

// Three significant figures or so, never in scientific notation for ordinary magnitudes.
std::string format_value(double v) {
  char buf[64];
  const double a = std::fabs(v);
  if (a == 0 || !std::isfinite(v)) {
    std::snprintf(buf, sizeof buf, "%g", v);
  } else if (a >= 1000) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else if (a >= 100) {
    std::snprintf(buf, sizeof buf, "%.1f", v);
  } else if (a >= 1) {
    std::snprintf(buf, sizeof buf, "%.2f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.3g", v);
  }
  return buf;
}

std::string dash_if_empty(const std::string& s) { return s.empty() ? "-" : s; }

}  // namespace

std::string format_size(std::uint64_t bytes) {
  if (bytes == 0) return "-";
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (v >= 1024 && unit + 1 < std::size(kUnits)) {
    v /= 1024;
    ++unit;
  }
  char buf[32];
  if (v == std::floor(v)) {
    std::snprintf(buf, sizeof buf, "%.0f%s", v, kUnits[unit]);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f%s", v, kUnits[unit]);
  }
  return buf;
}

std::vector<std::size_t> sizes_from_env(const char* variable, std::vector<std::size_t> defaults) {
  const char* list = std::getenv(variable);
  if (list == nullptr || *list == '\0') return defaults;
  std::vector<std::size_t> chosen;
  for (const char* at = list; *at != '\0';) {
    char* end = nullptr;
    const unsigned long long size = std::strtoull(at, &end, 10);
    if (end == at || size == 0 || (*end != ',' && *end != '\0')) {
      throw std::runtime_error(std::string(variable) +
                               ": expected sizes in bytes, such as \"4096,65536\", not \"" +
                               list + "\"");
    }
    chosen.push_back(size);
    at = *end == ',' ? end + 1 : end;
  }
  return chosen;
}

void Reporter::add(Record record) {
  for (const auto& [key, value] : record.extra) {
    if (std::find(std::begin(kRecordKeys), std::end(kRecordKeys), key) != std::end(kRecordKeys)) {
      throw std::invalid_argument("bench record: extra field \"" + key +
                                  "\" clashes with a standard field");
    }
  }
  if (record.suite.empty()) record.suite = suite_;
  if (!record.ratio) {
    record.ratio = record.baseline_value != 0 ? record.value / record.baseline_value : 1.0;
  }
  records_.push_back(std::move(record));
}

void Reporter::flush(std::ostream& out) {
  if (options_.json || flushed_ == records_.size()) return;
  std::vector<Record> pending(records_.begin() + static_cast<std::ptrdiff_t>(flushed_),
                              records_.end());
  print_table(out, pending);
  out << '\n' << std::flush;
  flushed_ = records_.size();
}

void Reporter::finish(std::ostream& out) {
  if (options_.json) {
    write_json(out, records_);
    out << std::flush;
  }
  if (!options_.output.empty()) {
    std::ofstream file(options_.output);
    write_json(file, records_);
    file.close();
    if (!file) throw std::runtime_error("cannot write the JSON output to " + options_.output);
  }
}

void print_table(std::ostream& out, const std::vector<Record>& records) {
  bool any_extra = false;
  for (const auto& r : records) any_extra |= !r.extra.empty();

  std::vector<std::vector<std::string>> rows;
  rows.push_back({"suite", "transport", "case", "size", "value", "unit", "baseline",
                  "baseline value", "ratio"});
  if (any_extra) rows[0].push_back("extra");
  for (const auto& r : records) {
    std::vector<std::string> row{r.suite,
                                 dash_if_empty(r.transport),
                                 r.case_name,
                                 format_size(r.size),
                                 format_value(r.value),
                                 r.unit,
                                 dash_if_empty(r.baseline),
                                 r.baseline.empty() ? "-" : format_value(r.baseline_value),
                                 format_value(r.ratio.value_or(1.0))};
    if (any_extra) {
      std::string extra;
      for (const auto& [key, value] : r.extra) {
        extra += (extra.empty() ? "" : " ") + key + "=" + value;
      }
      row.push_back(extra);
    }
    rows.push_back(std::move(row));
  }

  std::vector<std::size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  // Numbers (size, value, baseline value, ratio) are right-aligned so that magnitudes line up.
  auto right_aligned = [](std::size_t column) {
    return column == 3 || column == 4 || column == 7 || column == 8;
  };
  for (std::size_t i = 0; i < rows.size(); ++i) {
    std::string line;
    for (std::size_t c = 0; c < rows[i].size(); ++c) {
      const std::string& cell = rows[i][c];
      const std::string pad(widths[c] - cell.size(), ' ');
      if (c > 0) line += "  ";
      const bool last = c + 1 == rows[i].size();
      line += right_aligned(c) ? pad + cell : (last ? cell : cell + pad);
    }
    line.erase(line.find_last_not_of(' ') + 1);
    out << line << '\n';
    if (i == 0) {
      std::size_t total = 0;
      for (auto w : widths) total += w + 2;
      out << std::string(total - 2, '-') << '\n';
    }
  }
}

namespace {

// Six significant digits: more than any benchmark resolves, and no 271.70500000000004 noise.
double tidy(double v) {
  if (!std::isfinite(v)) return v;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return std::strtod(buf, nullptr);
}

}  // namespace

void write_json(std::ostream& out, const std::vector<Record>& records) {
  out << "[";
  for (std::size_t i = 0; i < records.size(); ++i) {
    const Record& r = records[i];
    nlohmann::ordered_json j;
    j["suite"] = r.suite;
    j["transport"] = r.transport;
    j["case"] = r.case_name;
    j["size"] = r.size;
    j["value"] = tidy(r.value);
    j["unit"] = r.unit;
    j["baseline"] = r.baseline;
    j["baseline_value"] = tidy(r.baseline_value);
    j["ratio"] = tidy(r.ratio.value_or(1.0));
    for (const auto& [key, value] : r.extra) j[key] = value;
    out << (i == 0 ? "\n  " : ",\n  ") << j.dump();
  }
  out << (records.empty() ? "]\n" : "\n]\n");
}

// ---- registries -------------------------------------------------------------------------------

namespace {

// Function-local statics: the registries are filled from other translation units' static
// initialisers, whose order relative to this file's is unspecified.
std::map<std::string, SuiteFunction, std::less<>>& suite_registry() {
  static std::map<std::string, SuiteFunction, std::less<>> registry;
  return registry;
}

std::map<std::string, HelperFunction, std::less<>>& helper_registry() {
  static std::map<std::string, HelperFunction, std::less<>> registry;
  return registry;
}

}  // namespace

bool register_suite(std::string_view name, SuiteFunction function) {
  if (!suite_registry().emplace(std::string(name), std::move(function)).second) {
    std::fprintf(stderr, "dango-bench: suite \"%.*s\" registered twice\n",
                 static_cast<int>(name.size()), name.data());
    std::abort();
  }
  return true;
}

const std::map<std::string, SuiteFunction, std::less<>>& suites() { return suite_registry(); }

bool register_helper(std::string_view name, HelperFunction function) {
  if (!helper_registry().emplace(std::string(name), std::move(function)).second) {
    std::fprintf(stderr, "dango-bench: helper \"%.*s\" registered twice\n",
                 static_cast<int>(name.size()), name.data());
    std::abort();
  }
  return true;
}

// ---- statistics -------------------------------------------------------------------------------

double percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  p = std::clamp(p, 0.0, 100.0);
  // Nearest rank: the smallest sample with at least p% of the samples at or below it.
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(samples.size())));
  const std::size_t index = rank == 0 ? 0 : rank - 1;
  std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(index),
                   samples.end());
  return samples[index];
}

double median(std::vector<double> samples) {
  if (samples.empty()) return 0;
  const std::size_t n = samples.size();
  auto mid = samples.begin() + static_cast<std::ptrdiff_t>(n / 2);
  std::nth_element(samples.begin(), mid, samples.end());
  if (n % 2 == 1) return *mid;
  const double upper = *mid;
  const double lower = *std::max_element(samples.begin(), mid);
  return (lower + upper) / 2;
}

double mean(const std::vector<double>& samples) {
  if (samples.empty()) return 0;
  double sum = 0;
  for (double s : samples) sum += s;
  return sum / static_cast<double>(samples.size());
}

// ---- helper processes -------------------------------------------------------------------------

std::optional<int> run_helper_if_requested(int argc, char** argv) {
  if (argc < 2 || argv[1] != kHelperCommand) return std::nullopt;
  if (argc < 3) {
    std::fprintf(stderr, "dango-bench %s: missing helper name\n", argv[1]);
    return 2;
  }
  auto it = helper_registry().find(std::string_view(argv[2]));
  if (it == helper_registry().end()) {
    std::fprintf(stderr, "dango-bench %s: unknown helper \"%s\"\n", argv[1], argv[2]);
    return 2;
  }
  std::vector<std::string> args(argv + 3, argv + argc);
  try {
    return it->second(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dango-bench helper %s: %s\n", argv[2], e.what());
    return 1;
  }
}

HelperProcess::HelperProcess(std::string_view name, const std::vector<std::string>& args) {
  // Everything the child needs is prepared before fork: between fork and exec only
  // async-signal-safe calls are allowed (the bench process may have other threads).
  std::vector<std::string> strings{"dango-bench", std::string(kHelperCommand), std::string(name)};
  strings.insert(strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("helper pipe: ") + std::strerror(errno));
  }
  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) {
    const int err = errno;
    close(fds[0]);
    close(fds[1]);
    throw std::runtime_error(std::string("helper fork: ") + std::strerror(err));
  }
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);              // the parent died before prctl
    if (dup2(fds[1], STDOUT_FILENO) < 0) _exit(127);  // dup2 clears O_CLOEXEC on stdout
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  close(fds[1]);
  stdout_fd_ = fds[0];
}

HelperProcess::~HelperProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

std::string HelperProcess::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (auto nl = pending_.find('\n'); nl != std::string::npos) {
      std::string line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      return line;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) throw std::runtime_error("helper process: no line on its stdout in time");
    pollfd pfd{.fd = stdout_fd_, .events = POLLIN, .revents = 0};
    const int ready = poll(&pfd, 1, static_cast<int>(left));
    if (ready < 0 && errno != EINTR) {
      throw std::runtime_error(std::string("helper process: poll: ") + std::strerror(errno));
    }
    if (ready <= 0) continue;
    char buf[256];
    const ssize_t n = read(stdout_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("helper process: stdout closed before a full line");
    pending_.append(buf, static_cast<std::size_t>(n));
  }
}

std::optional<int> HelperProcess::wait_exit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return exit_code_;
  const auto deadline = Clock::now() + timeout;
  auto nap = std::chrono::microseconds(20);
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return exit_code_;
    }
    if (r < 0 && errno != EINTR) {
      throw std::runtime_error(std::string("helper process: waitpid: ") + std::strerror(errno));
    }
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(nap);
    nap = std::min(nap * 2, std::chrono::microseconds(10000));
  }
}

}  // namespace dango::bench
