// The client `make run` runs against a dango-daemon started from examples/default.json: it keeps
// a few files' contents in the blob target "data" (provider 2) and an index of them in the
// RocksDB database "meta" (provider 1), reads everything back, checks it, has the Lua
// interpreter "main" (provider 3) add up the sizes it read, and says what it did.
//
//   dango-daemon-demo tcp://127.0.0.1:PORT
//
// Exit code 0 when every value and blob read back equals what was written, and the interpreter's
// sum is right.

#include <dango/dango.hpp>
#include <dango/services/blob/client.hpp>
#include <dango/services/kv/client.hpp>
#include <dango/services/script/client.hpp>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

// Some files to store: a short text and a 1 MiB pattern (large enough to travel by bulk
// transfer rather than inside the RPC).
std::map<std::string, std::string> sample_files() {
  std::string pattern(1 << 20, '\0');
  for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<char>('a' + i % 26);
  return {
      {"notes.txt", "Dango stores small values in a key/value database and bulk data in blobs.\n"},
      {"pattern.bin", pattern}};
}

std::span<const std::byte> bytes_of(const std::string& s) { return std::as_bytes(std::span(s)); }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0]
              << " ADDRESS (a dango-daemon serving examples/default.json)\n";
    return 2;
  }
  const std::string address = argv[1];
  dango::Engine engine{"tcp"};
  dango::kv::Database meta = dango::kv::Client{engine}.open(address, 1, "meta");
  dango::blob::Target data = dango::blob::Client{engine}.open(address, 2, "data");
  std::cout << "client: opened database \"meta\" (" << meta.type()
            << ") and blob target \"data\" at " << address << "\n";

  // Store: each file's bytes in a new region (created, written and made durable in one RPC),
  // and "file/<name>" -> "<region> <size>" in the database.
  const auto files = sample_files();
  for (const auto& [name, contents] : files) {
    const dango::blob::RegionId region = data.create_write_persist(bytes_of(contents));
    meta.put("file/" + name, region.to_string() + " " + std::to_string(contents.size()));
    std::cout << "client: stored " << name << " (" << contents.size() << " bytes) in region "
              << region.to_string() << "\n";
  }
  meta.put("owner", "make run");

  // Read back: list the index, fetch each blob, compare; hand each size to the interpreter,
  // whose global `sizes` keeps them from one script to the next.
  dango::script::Interpreter lua = dango::script::Client{engine}.open(address, 3, "main");
  lua.execute("sizes = {}");
  size_t total = 0;
  int mismatches = 0;
  for (const auto& entry : meta.list_keyvals({.prefix = "file/"})) {
    std::istringstream fields(entry.value);
    std::string region_text;
    size_t size = 0;
    fields >> region_text >> size;
    const auto region = dango::blob::RegionId::from_string(region_text);
    std::string contents(size, '\0');
    data.read(region.value(), 0, std::as_writable_bytes(std::span(contents)));
    const std::string name = entry.key.substr(5);
    const bool same = contents == files.at(name);
    mismatches += same ? 0 : 1;
    std::cout << "client: read back " << name << " from " << region_text << ": " << size
              << " bytes, " << (same ? "identical" : "DIFFERENT") << "\n";
    lua.execute("sizes[#sizes + 1] = tonumber(args.size)", {{"size", std::to_string(size)}});
    total += size;
  }
  const dango::script::Execution sum = lua.execute(
      "local total = 0 for _, size in ipairs(sizes) do total = total + size end\n"
      "print(#sizes .. ' sizes received') return total");
  std::cout << "client: the service's Lua interpreter says: " << sum.output
            << "client: ... and sums them to " << sum.result << " bytes\n";
  if (sum.result != std::to_string(total)) ++mismatches;
  const std::optional<std::string> owner = meta.get("owner");
  std::cout << "client: \"owner\" = \"" << owner.value_or("<absent>") << "\"; the database holds "
            << meta.count() << " keys\n";
  if (!owner || *owner != "make run") ++mismatches;
  return mismatches == 0 ? 0 : 1;
}
