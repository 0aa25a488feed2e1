// Bootstrap "pmix" (built only when PMIx is found): the group is the PMIx job (namespace) the
// process was started in, by any PMIx launcher (Open MPI's mpirun, srun --mpi=pmix, prterun).
// Each process puts its engine address under the key "dango.group.<name>.address", a fence
// with data collection exchanges them, and every member starts with the same view of the job's
// ranks without contacting anyone. The fence is bounded by join_timeout (when the launcher
// honours PMIX_TIMEOUT). PMIx is initialised for the exchange only (PMIx_Init is reference
// counted: an application's own use of PMIx, or MPI's, is not disturbed).

#include <pmix.h>

#include <chrono>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "../bootstrap.hpp"
#include "dango/common/config.hpp"
#include "dango/common/error.hpp"
#include "dango/common/log.hpp"
#include "spdlog/spdlog.h"

namespace dango::group::detail {
namespace {

[[noreturn]] void fail(const std::string& what, pmix_status_t status) {
  throw Error("group bootstrap \"pmix\": " + what + ": " + PMIx_Error_string(status));
}

struct ValueFree {
  void operator()(pmix_value_t* value) const { PMIX_VALUE_RELEASE(value); }
};
using ValuePtr = std::unique_ptr<pmix_value_t, ValueFree>;

// The value of `key` for `proc`; throws naming the key when PMIx has none.
ValuePtr get(const pmix_proc_t& proc, const std::string& key) {
  pmix_value_t* value = nullptr;
  const pmix_status_t status = PMIx_Get(&proc, key.c_str(), nullptr, 0, &value);
  if (status != PMIX_SUCCESS) {
    fail("PMIx_Get(\"" + key + "\") for rank " + std::to_string(proc.rank) + " of " + proc.nspace,
         status);
  }
  return ValuePtr(value);
}

// Puts this process's address, fences with data collection over its namespace, and returns
// every rank's address in rank order. PMIx must be initialised, `self` being this process.
std::vector<std::string> exchange(const pmix_proc_t& self, const std::string& key,
                                  const std::string& address, std::chrono::milliseconds timeout) {
  pmix_value_t value;
  PMIx_Value_load(&value, address.c_str(), PMIX_STRING);
  pmix_status_t status = PMIx_Put(PMIX_GLOBAL, key.c_str(), &value);
  PMIx_Value_destruct(&value);
  if (status != PMIX_SUCCESS) fail("PMIx_Put(\"" + key + "\")", status);
  if ((status = PMIx_Commit()) != PMIX_SUCCESS) fail("PMIx_Commit", status);

  pmix_proc_t job;
  PMIX_PROC_CONSTRUCT(&job);
  PMIX_LOAD_PROCID(&job, self.nspace, PMIX_RANK_WILDCARD);
  pmix_info_t info[2];
  bool collect = true;
  const int seconds = static_cast<int>((timeout.count() + 999) / 1000);
  PMIx_Info_load(&info[0], PMIX_COLLECT_DATA, &collect, PMIX_BOOL);
  PMIx_Info_load(&info[1], PMIX_TIMEOUT, &seconds, PMIX_INT);
  status = PMIx_Fence(&job, 1, info, 2);
  for (pmix_info_t& i : info) PMIX_INFO_DESTRUCT(&i);
  if (status != PMIX_SUCCESS) fail("PMIx_Fence over " + std::string(self.nspace), status);

  const ValuePtr size = get(job, PMIX_JOB_SIZE);
  if (size->type != PMIX_UINT32) fail("PMIX_JOB_SIZE is not a uint32", PMIX_ERR_TYPE_MISMATCH);
  std::vector<std::string> addresses;
  for (uint32_t rank = 0; rank < size->data.uint32; ++rank) {
    pmix_proc_t proc;
    PMIX_PROC_CONSTRUCT(&proc);
    PMIX_LOAD_PROCID(&proc, self.nspace, rank);
    const ValuePtr their = get(proc, key);
    if (their->type != PMIX_STRING || their->data.string == nullptr)
      fail("\"" + key + "\" of rank " + std::to_string(rank) + " is not a string",
           PMIX_ERR_TYPE_MISMATCH);
    addresses.emplace_back(their->data.string);
  }
  return addresses;
}

// Every rank's address: PMIx initialised for the exchange, finalised after it.
std::vector<std::string> exchange_addresses(const std::string& key, const std::string& address,
                                            std::chrono::milliseconds timeout) {
  pmix_proc_t self;
  PMIX_PROC_CONSTRUCT(&self);
  const pmix_status_t status = PMIx_Init(&self, nullptr, 0);
  if (status != PMIX_SUCCESS) {
    fail("PMIx_Init (was the process started by a PMIx launcher: mpirun, srun --mpi=pmix?)",
         status);
  }
  std::vector<std::string> addresses;
  std::exception_ptr failure;
  try {
    addresses = exchange(self, key, address, timeout);
  } catch (...) {
    failure = std::current_exception();
  }
  PMIx_Finalize(nullptr, 0);
  if (failure) std::rethrow_exception(failure);
  return addresses;
}

void validate_pmix(const GroupOptions& options, std::string_view path) {
  const std::string key = "dango.group." + options.name + ".address";
  if (key.size() > PMIX_MAX_KEYLEN) {
    config::fail(config::join(path, "name"), "too long for the \"pmix\" bootstrap (key \"" + key +
                                                 "\" exceeds " + std::to_string(PMIX_MAX_KEYLEN) +
                                                 " characters)");
  }
}

void run_pmix(BootstrapContext& context) {
  const GroupOptions& options = context.options();
  const Member self = context.self();
  const std::string key = "dango.group." + options.name + ".address";
  std::vector<std::string> addresses;
  run_on_os_thread(
      [&] { addresses = exchange_addresses(key, self.address, options.join_timeout); });
  const std::vector<Member> members = launcher_members("pmix", addresses, options.provider_id);
  log::get("group")->debug("group {}: {} members from the PMIx job", options.name, members.size());
  context.create(members);
}

}  // namespace
DANGO_REGISTER_GROUP_BOOTSTRAP(pmix, validate_pmix, run_pmix);
}  // namespace dango::group::detail
