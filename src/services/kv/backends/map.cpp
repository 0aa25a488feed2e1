// "map": an ordered in-memory database (std::map), listing in key order. Lost at exit.

#include "services/kv/backends/memory_backend.hpp"

namespace dango::kv {
namespace {

class MapBackend final : public MemoryBackend<std::map<std::string, std::string, std::less<>>> {
 public:
  using MemoryBackend::MemoryBackend;
  std::string_view type() const override { return "map"; }
};

}  // namespace

DANGO_REGISTER_KV_BACKEND(map, MapBackend);

}  // namespace dango::kv
