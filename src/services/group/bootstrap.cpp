// The bootstrap registry (see bootstrap.hpp).

#include "bootstrap.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "dango/common/error.hpp"

namespace dango::group::detail {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, BootstrapMethod, std::less<>> methods;
};

// Function-local: registrations from other files' static initialisers may run first.
Registry& registry() {
  static Registry instance;
  return instance;
}

}  // namespace

bool register_bootstrap(BootstrapMethod method) {
  Registry& reg = registry();
  std::lock_guard lock(reg.mutex);
  const std::string name = method.name;
  if (!reg.methods.emplace(name, std::move(method)).second) {
    std::fprintf(stderr, "dango group: bootstrap method \"%s\" registered twice\n", name.c_str());
    std::abort();
  }
  return true;
}

const BootstrapMethod* find_bootstrap(std::string_view name) {
  Registry& reg = registry();
  std::lock_guard lock(reg.mutex);
  auto it = reg.methods.find(name);
  return it == reg.methods.end() ? nullptr : &it->second;
}

std::vector<std::string> bootstrap_names() {
  Registry& reg = registry();
  std::lock_guard lock(reg.mutex);
  std::vector<std::string> names;
  for (const auto& [name, method] : reg.methods) names.push_back(name);
  return names;
}

void run_on_os_thread(const std::function<void()>& work) {
  std::exception_ptr failure;
  std::thread worker([&] {
    try {
      work();
    } catch (...) {
      failure = std::current_exception();
    }
  });
  worker.join();
  if (failure) std::rethrow_exception(failure);
}

std::vector<Member> launcher_members(std::string_view method,
                                     const std::vector<std::string>& addresses,
                                     rpc::ProviderId provider_id) {
  std::vector<Member> members;
  std::set<std::string_view> seen;
  for (size_t rank = 0; rank < addresses.size(); ++rank) {
    if (!seen.insert(addresses[rank]).second) {
      throw Error("group bootstrap \"" + std::string(method) + "\": rank " + std::to_string(rank) +
                  " has the address \"" + addresses[rank] + "\" of another rank");
    }
    members.push_back(Member{.address = addresses[rank], .provider_id = provider_id});
  }
  return members;
}

}  // namespace dango::group::detail
