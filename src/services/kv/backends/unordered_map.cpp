// "unordered_map": an in-memory hash table, faster point operations than "map" but no key
// order: listing fails with Unsupported. Lost at exit.

#include "services/kv/backends/memory_backend.hpp"

namespace dango::kv {
namespace {

class UnorderedMapBackend final
    : public MemoryBackend<
          std::unordered_map<std::string, std::string, StringHash, std::equal_to<>>> {
 public:
  using MemoryBackend::MemoryBackend;
  std::string_view type() const override { return "unordered_map"; }
};

}  // namespace

DANGO_REGISTER_KV_BACKEND(unordered_map, UnorderedMapBackend);

}  // namespace dango::kv
