// Bootstrap "mpi" (built only when MPI is found): the group is MPI_COMM_WORLD. Every rank
// gathers every rank's engine address (MPI_Allgather of the lengths, then MPI_Allgatherv of the
// bytes) and starts with the same view, without contacting anyone. Run as
//
//   mpirun -np 16 dango-daemon ...   (each process's group config: {"bootstrap": "mpi", ...})
//
// MPI is initialised by the bootstrap when the application has not done so, and finalised
// again as soon as the addresses are exchanged: the group then lives on Dango's own transport,
// and a member that leaves or exits does not wait for the others in MPI_Finalize. An
// application that uses MPI itself initialises it first (MPI_THREAD_SERIALIZED or higher: the
// bootstrap calls MPI from a thread of its own); the bootstrap then leaves it initialised.
// The call blocks until every rank of MPI_COMM_WORLD has started its member.

#include <mpi.h>

#include <exception>
#include <numeric>
#include <string>
#include <vector>

#include "../bootstrap.hpp"
#include "dango/common/error.hpp"
#include "dango/common/log.hpp"
#include "spdlog/spdlog.h"

namespace dango::group::detail {
namespace {

// Throws Error naming the MPI call and MPI's message when `rc` is not MPI_SUCCESS.
void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char message[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(rc, message, &length) != MPI_SUCCESS) length = 0;
  throw Error(std::string("group bootstrap \"mpi\": ") + call + " failed" +
              (length > 0 ? ": " + std::string(message, length) : std::string()));
}

// Initialises MPI unless the application has; true when this call did (and must finalise).
bool ensure_initialised() {
  int finalized = 0;
  check(MPI_Finalized(&finalized), "MPI_Finalized");
  if (finalized) throw Error("group bootstrap \"mpi\": MPI is already finalised in this process");
  int initialised = 0;
  check(MPI_Initialized(&initialised), "MPI_Initialized");
  if (!initialised) {
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    return true;
  }
  int provided = MPI_THREAD_SINGLE;
  check(MPI_Query_thread(&provided), "MPI_Query_thread");
  if (provided < MPI_THREAD_SERIALIZED) {
    throw Error(
        "group bootstrap \"mpi\": the application initialised MPI below MPI_THREAD_SERIALIZED; "
        "the bootstrap calls MPI from its own thread (initialise MPI with "
        "MPI_THREAD_SERIALIZED or higher, or let the bootstrap initialise it)");
  }
  return false;
}

// Every rank's `address`, in rank order, over `comm`.
std::vector<std::string> allgather(MPI_Comm comm, const std::string& address) {
  int size = 0;
  check(MPI_Comm_size(comm, &size), "MPI_Comm_size");
  const int length = static_cast<int>(address.size());
  std::vector<int> lengths(size);
  check(MPI_Allgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, comm), "MPI_Allgather");
  std::vector<int> offsets(size);
  std::exclusive_scan(lengths.begin(), lengths.end(), offsets.begin(), 0);
  std::string bytes(static_cast<size_t>(offsets.back() + lengths.back()), '\0');
  check(MPI_Allgatherv(address.data(), length, MPI_CHAR, bytes.data(), lengths.data(),
                       offsets.data(), MPI_CHAR, comm),
        "MPI_Allgatherv");
  std::vector<std::string> addresses;
  for (int r = 0; r < size; ++r) addresses.push_back(bytes.substr(offsets[r], lengths[r]));
  return addresses;
}

// The addresses of MPI_COMM_WORLD's ranks, in rank order; MPI as the application left it.
std::vector<std::string> exchange_addresses(const std::string& address) {
  const bool initialised_here = ensure_initialised();
  std::vector<std::string> addresses;
  std::exception_ptr failure;
  // A duplicate, so that errors return (instead of aborting the job) without touching the
  // error handler of the application's MPI_COMM_WORLD.
  MPI_Comm comm = MPI_COMM_NULL;
  try {
    check(MPI_Comm_dup(MPI_COMM_WORLD, &comm), "MPI_Comm_dup");
    check(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    addresses = allgather(comm, address);
  } catch (...) {
    failure = std::current_exception();
  }
  if (comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
  if (initialised_here) MPI_Finalize();
  if (failure) std::rethrow_exception(failure);
  return addresses;
}

void run_mpi(BootstrapContext& context) {
  const Member self = context.self();
  std::vector<std::string> addresses;
  run_on_os_thread([&] { addresses = exchange_addresses(self.address); });
  const std::vector<Member> members =
      launcher_members("mpi", addresses, context.options().provider_id);
  log::get("group")->debug("group {}: {} members from MPI_COMM_WORLD", context.options().name,
                           members.size());
  context.create(members);
}

}  // namespace
DANGO_REGISTER_GROUP_BOOTSTRAP(mpi, nullptr, run_mpi);
}  // namespace dango::group::detail
