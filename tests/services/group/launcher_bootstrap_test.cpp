// The launcher bootstraps with real processes: three build/bin/dango-group-member started by
// Open MPI's mpirun (which is also a PMIx server) with `--bootstrap mpi` or `--bootstrap pmix`
// form one group of three. Skipped when mpirun is not installed or dango was built without the
// method (no MPI / PMIx found). mpirun is stopped with SIGTERM, which it forwards to the members
// (they leave and exit); its ranks are killed too should it not exit, so that none is orphaned.

#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "dango/services/group/client.hpp"
#include "dango/services/group/options.hpp"
#include "rpc/rpc_test_util.hpp"

namespace dango::group {
namespace {

using namespace std::chrono_literals;
using rpc::testing::ChildProcess;
using rpc::testing::eventually;

constexpr int kRanks = 3;

std::string member_program() { return std::string(DANGO_BIN_DIR) + "/dango-group-member"; }

// The first executable `name` on PATH, or "".
std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path == nullptr ? "" : path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// Pids of the running processes whose parent is `parent` (from /proc/<pid>/stat).
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> children;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // "pid (comm) state ppid ...": comm may hold spaces, so parse after the last ')'.
    std::istringstream rest(line.substr(line.rfind(')') + 1));
    char state = 0;
    pid_t ppid = 0;
    if (rest >> state >> ppid && ppid == parent) children.push_back(std::stoi(name));
  }
  return children;
}

// mpirun running `kRanks` members; stopped by SIGTERM on scope exit, its ranks killed if it
// does not exit in time (a killed mpirun would orphan them).
class MpirunJob {
 public:
  MpirunJob(const std::string& mpirun, const std::string& config, const std::string& bootstrap) {
    // Quick to start on a loaded 2-core machine: no binding, no shared-memory transport.
    std::vector<std::string> args = {"--oversubscribe", "-np", std::to_string(kRanks)};
    args.insert(args.end(), {"--bind-to", "none", "--mca", "btl", "self,tcp"});
    // Under AddressSanitizer, full stacks for LeakSanitizer: what Open MPI keeps after
    // MPI_Finalize was allocated by components it has unloaded since, which only the frames
    // below them (in libmpi, scripts/lsan.supp) can name. No effect on an unsanitized build.
    const char* asan_options = std::getenv("ASAN_OPTIONS");
    args.insert(args.end(), {"-x", "ASAN_OPTIONS=" + std::string(asan_options ? asan_options : "") +
                                       ":fast_unwind_on_malloc=0"});
    if (::geteuid() == 0) args.push_back("--allow-run-as-root");
    args.insert(args.end(), {member_program(), "--config", config, "--bootstrap", bootstrap});
    process_ = std::make_unique<ChildProcess>(mpirun, args);
  }
  ~MpirunJob() { stop(); }
  // The pids of its ranks (mpirun's children).
  std::vector<pid_t> ranks() const {
    return process_ ? children_of(process_->pid()) : std::vector<pid_t>{};
  }
  // Stops the job; true when mpirun exited within 10 s of SIGTERM (it was killed otherwise).
  bool stop() {
    if (!process_) return true;
    const std::vector<pid_t> ranks = this->ranks();
    process_->kill(SIGTERM);
    const bool exited = process_->wait_exit(10s).has_value();
    if (!exited) {
      for (pid_t rank : ranks) ::kill(rank, SIGKILL);
    }
    process_.reset();  // SIGKILLs and reaps mpirun if still running
    return exited;
  }

 private:
  std::unique_ptr<ChildProcess> process_;
};

class LauncherBootstrap : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    mpirun_ = find_on_path("mpirun");
    if (mpirun_.empty()) GTEST_SKIP() << "mpirun is not installed (Debian: openmpi-bin)";
    if (::access(member_program().c_str(), X_OK) != 0)
      GTEST_SKIP() << member_program() << " is not built (target dango-group-member)";
    try {
      GroupOptions::from_json({{"name", "probe"}, {"bootstrap", GetParam()}});
    } catch (const ConfigError& e) {
      GTEST_SKIP() << "dango was built without the \"" << GetParam()
                   << "\" bootstrap: " << e.what();
    }
  }

  // A member config writing the group file (kept current by the member of rank 0).
  std::string config() {
    const nlohmann::json json = {
        {"address", "tcp://127.0.0.1:0"},
        {"group",
         {{"name", "store"},
          {"bootstrap", "self"},  // replaced by --bootstrap on the command line
          {"file", group_file().string()},
          {"swim",
           {{"period_ms", 250}, {"ping_timeout_ms", 150}, {"suspicion_timeout_ms", 2000}}}}}};
    const auto path = dir_.path() / "member.json";
    std::ofstream(path) << json.dump(2);
    return path.string();
  }
  std::filesystem::path group_file() const { return dir_.path() / "store.group"; }

  // The view `address` serves (an empty one when it does not answer).
  Membership view_of(const std::string& address) {
    try {
      return Client{client_}.open(address, 0, 2s).membership();
    } catch (const Error&) {
      return {};
    }
  }
  static std::vector<std::string> addresses(const Membership& view) {
    std::vector<std::string> out;
    for (const auto& m : view.members) out.push_back(m.address);
    return out;
  }

  rpc::testing::TempDir dir_;
  std::string mpirun_;
  rpc::Engine client_{"tcp"};
};

TEST_P(LauncherBootstrap, ThreeRanksStartedByMpirunFormOneGroupAndLeaveOnSigterm) {
  MpirunJob job(mpirun_, config(), GetParam());
  // Rank 0 of the group writes the file once the bootstrap has installed the view.
  Membership from_file;
  ASSERT_TRUE(eventually(
      [&] {
        try {
          from_file = Membership::load_file(group_file());
        } catch (const ConfigError&) {
          return false;  // not written yet
        }
        return from_file.size() == kRanks;
      },
      10s))
      << "no group file listing " << kRanks << " members";
  const std::vector<std::string> expected = addresses(from_file);
  // Every member serves the same view of the three, from the start (no join, no dissemination).
  for (const std::string& address : expected) {
    const Membership view = view_of(address);
    EXPECT_EQ(addresses(view), expected) << "view served by " << address;
    EXPECT_EQ(view.name, "store");
  }
  const std::vector<pid_t> ranks = job.ranks();
  EXPECT_EQ(ranks.size(), size_t{kRanks});
  ASSERT_TRUE(job.stop()) << "mpirun did not exit within 10 s of SIGTERM";
  // mpirun may exit before the ranks it stopped are reaped (by init, their new parent).
  for (pid_t rank : ranks) {
    EXPECT_TRUE(eventually([&] { return ::kill(rank, 0) != 0; }, 5s))
        << "rank pid " << rank << " still runs";
  }
}

INSTANTIATE_TEST_SUITE_P(Methods, LauncherBootstrap, ::testing::Values("mpi", "pmix"),
                         [](const auto& info) { return info.param; });

TEST(LauncherBootstrapErrors, PmixBootstrapOutsideALauncherExitsWithAnError) {
  if (::access(member_program().c_str(), X_OK) != 0)
    GTEST_SKIP() << member_program() << " is not built (target dango-group-member)";
  try {
    GroupOptions::from_json({{"name", "probe"}, {"bootstrap", "pmix"}});
  } catch (const ConfigError& e) {
    GTEST_SKIP() << "dango was built without the \"pmix\" bootstrap: " << e.what();
  }
  rpc::testing::TempDir dir;
  const auto config = dir.path() / "member.json";
  std::ofstream(config) << nlohmann::json{{"group", {{"name", "store"}, {"bootstrap", "pmix"}}}};
  // Started directly: no PMIx server to connect to, as mpirun or srun would provide.
  ChildProcess member(member_program(), {"--config", config.string()});
  const std::optional<int> status = member.wait_exit(10s);
  ASSERT_TRUE(status.has_value()) << "the member neither failed nor exited";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1) << "wait status " << *status;
}

}  // namespace
}  // namespace dango::group
