// The transport registry: schemes ("tcp", later "sm", "ofi+verbs") map to factories registered
// at static-initialisation time by DANGO_REGISTER_TRANSPORT, so adding a transport is one new
// file and one registration line.

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "dango/common/error.hpp"
#include "dango/net/transport.hpp"

namespace dango::net {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, TransportFactory, std::less<>> factories;
  std::map<std::string, std::string, std::less<>> loopbacks;
};

// Function-local so that registrations from other translation units' static initialisers never
// run before the map is constructed.
Registry& registry() {
  static Registry instance;
  return instance;
}

std::string joined_schemes(const std::vector<std::string>& schemes) {
  std::string out;
  for (const auto& scheme : schemes) {
    if (!out.empty()) out += ", ";
    out += scheme;
  }
  return out.empty() ? "none" : out;
}

// Anonymous pages owned by the region that registers them.
class OwnedRegion final : public MemoryRegion {
 public:
  OwnedRegion(std::span<std::byte> memory, std::unique_ptr<MemoryRegion> registration)
      : memory_(memory), segment_(memory), registration_(std::move(registration)) {}
  ~OwnedRegion() override {
    registration_.reset();  // deregister before the pages go
    if (!memory_.empty()) ::munmap(memory_.data(), memory_.size());
  }
  size_t size() const override { return registration_->size(); }
  Access access() const override { return registration_->access(); }
  std::span<const std::span<std::byte>> segments() const override { return {&segment_, 1}; }
  std::vector<std::byte> descriptor() const override { return registration_->descriptor(); }
  MemoryRegion& registration() override { return registration_->registration(); }

 private:
  std::span<std::byte> memory_;
  std::span<std::byte> segment_;
  std::unique_ptr<MemoryRegion> registration_;
};

}  // namespace

std::unique_ptr<MemoryRegion> Transport::allocate_memory(size_t size, Access access) {
  std::span<std::byte> memory;
  if (size > 0) {
    void* pages = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pages == MAP_FAILED) {
      throw NetworkError("cannot allocate " + std::to_string(size) +
                         " bytes of exposed memory: " + std::strerror(errno));
    }
    memory = {static_cast<std::byte*>(pages), size};
  }
  std::span<std::byte> segment = memory;
  try {
    auto registration = register_memory({&segment, 1}, access);
    return std::make_unique<OwnedRegion>(memory, std::move(registration));
  } catch (...) {
    if (!memory.empty()) ::munmap(memory.data(), memory.size());
    throw;
  }
}

std::pair<std::string_view, std::string_view> split_address(std::string_view address) {
  constexpr std::string_view kSeparator = "://";
  auto pos = address.find(kSeparator);
  if (pos == std::string_view::npos) return {address, std::string_view{}};
  return {address.substr(0, pos), address.substr(pos + kSeparator.size())};
}

bool register_transport(std::string scheme, TransportFactory factory, std::string loopback) {
  auto& reg = registry();
  std::lock_guard lock(reg.mutex);
  if (loopback.empty()) loopback = scheme + "://127.0.0.1:0";
  reg.loopbacks.insert_or_assign(scheme, std::move(loopback));
  reg.factories.insert_or_assign(std::move(scheme), std::move(factory));
  return true;
}

std::string loopback_address(std::string_view scheme) {
  auto& reg = registry();
  std::lock_guard lock(reg.mutex);
  auto it = reg.loopbacks.find(scheme);
  if (it == reg.loopbacks.end()) {
    throw NetworkError("no transport for scheme \"" + std::string(scheme) + "\"");
  }
  return it->second;
}

std::vector<std::string> registered_transports() {
  auto& reg = registry();
  std::lock_guard lock(reg.mutex);
  std::vector<std::string> schemes;
  schemes.reserve(reg.factories.size());
  for (const auto& entry : reg.factories) schemes.push_back(entry.first);
  return schemes;
}

std::unique_ptr<Transport> make_transport(std::string_view address,
                                          const TransportOptions& options) {
  auto scheme = split_address(address).first;
  TransportFactory factory;
  {
    auto& reg = registry();
    std::lock_guard lock(reg.mutex);
    auto it = reg.factories.find(scheme);
    if (it != reg.factories.end()) factory = it->second;
  }
  if (!factory) {
    throw NetworkError("no transport for scheme \"" + std::string(scheme) + "\" in address \"" +
                       std::string(address) +
                       "\"; registered transports: " + joined_schemes(registered_transports()));
  }
  // Called outside the lock: a factory may take time (binding, resolving) and must not block
  // other registry users.
  return factory(address, options);
}

}  // namespace dango::net
