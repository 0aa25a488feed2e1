// The file target, in each of its layouts (one file, a directory of files): layout surviving
// restarts, a full target and a file system too small, paths that cannot be opened, O_DIRECT and
// the pread/pwrite engine, a torn journal tail, damaged files, and writes straight into the
// mapped file. What only the directory layout has: data_files_test.cpp.

#include <gtest/gtest.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "blob_test_util.hpp"
// A private header of the component (src/services/blob/): the backend driven directly.
#include "../../../src/services/blob/backend.hpp"

namespace dango::blob {
namespace {

using namespace testing;

// Extents of the file at `path` that the file system reserved but has not written (FIEMAP), or
// -1 when it cannot tell.
int unwritten_extents(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  constexpr unsigned kExtents = 128;
  std::vector<std::byte> buffer(sizeof(fiemap) + kExtents * sizeof(fiemap_extent));
  auto* map = reinterpret_cast<fiemap*>(buffer.data());
  int unwritten = 0;
  uint64_t start = 0;
  for (bool last = false; !last;) {
    std::fill(buffer.begin(), buffer.end(), std::byte{0});
    map->fm_start = start;
    map->fm_length = ~uint64_t{0} - start;
    map->fm_flags = FIEMAP_FLAG_SYNC;
    map->fm_extent_count = kExtents;
    if (::ioctl(fd, FS_IOC_FIEMAP, map) != 0) {
      ::close(fd);
      return -1;
    }
    if (map->fm_mapped_extents == 0) break;
    for (unsigned i = 0; i < map->fm_mapped_extents; ++i) {
      const fiemap_extent& extent = map->fm_extents[i];
      if (extent.fe_flags & FIEMAP_EXTENT_UNWRITTEN) ++unwritten;
      last = extent.fe_flags & FIEMAP_EXTENT_LAST;
      start = extent.fe_logical + extent.fe_length;
    }
  }
  ::close(fd);
  return unwritten;
}

// Where the records of the journal at `path` end: its first slot of zeros (the file is grown
// ahead of its records, see journal.hpp).
uint64_t journal_end(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  uint64_t end = 64;
  while (end + 40 <= bytes.size() &&
         bytes.find_first_not_of('\0', end) < std::min<uint64_t>(end + 40, bytes.size())) {
    end += 40;
  }
  return end;
}

// Run on each example configuration of the file target (its layouts: "file", "file.directory").
class FileTarget : public ::testing::TestWithParam<std::string> {
 protected:
  ProviderOptions options(const nlohmann::json& overrides = nlohmann::json::object()) {
    return ProviderOptions{.targets = {config("main", overrides)},
                           .inline_threshold = 512,
                           .staging = {.buffer_size = 64 << 10, .buffers = 4, .pipeline_depth = 3}};
  }
  std::unique_ptr<Backend> make_backend(const nlohmann::json& overrides = nlohmann::json::object(),
                                        const std::string& name = "main") {
    const BackendType* type = find_backend("file");
    EXPECT_NE(type, nullptr);
    return type->make(config(name, overrides).config, {.target_name = name, .config_path = "t"});
  }
  bool directory() const { return config().config.value("layout", "file") == "directory"; }
  // The target's path, its first data file and its journal (they depend on the layout).
  std::string target_path() const { return (dir_.path() / "main" / "blob-target").string(); }
  std::string data_path() const {
    return directory() ? target_path() + "/data.00000" : target_path();
  }
  std::string journal_path() const {
    return directory() ? target_path() + "/journal" : target_path() + ".journal";
  }
  TargetConfig config(const std::string& name = "main",
                      const nlohmann::json& overrides = nlohmann::json::object()) const {
    return target_config(GetParam(), dir_.path(), name, overrides);
  }
  TempDir dir_;
};

TEST_P(FileTarget, RegionsSurviveARestartAndErasedOnesStayErased) {
  std::vector<std::pair<RegionId, uint64_t>> kept;
  RegionId erased;
  {
    BlobServer server{options()};
    const Target target = server.open();
    for (int i = 0; i < 10; ++i) {
      const auto data = pattern(1000 + i * 50000, static_cast<uint8_t>(i));
      kept.emplace_back(target.create_write_persist(data), checksum(data));
    }
    erased = kept.back().first;
    target.erase(erased);
    kept.pop_back();
  }
  BlobServer server{options()};
  const Target target = server.open();
  for (const auto& [id, sum] : kept) {
    std::vector<std::byte> back(target.get_size(id));
    target.read(id, 0, back);
    EXPECT_EQ(checksum(back), sum) << id.to_string();
  }
  EXPECT_THROW(target.get_size(erased), Error);
  const TargetInfo info = server.provider->targets().front();
  EXPECT_EQ(info.regions, kept.size());
  EXPECT_EQ(info.used_bytes + info.free_bytes, info.capacity);
  const RegionId fresh = target.create(10);
  for (const auto& [id, sum] : kept) EXPECT_NE(fresh, id);
  EXPECT_NE(fresh, erased);
}

TEST_P(FileTarget, AFullTargetRefusesClearlyAndStaysUsable) {
  BlobServer server{options({{"capacity", uint64_t{1} << 20}})};
  const Target target = server.open();
  const auto data = pattern(300000, 1);
  std::vector<RegionId> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(target.create_write_persist(data));
  try {
    target.create_write_persist(data);
    FAIL() << "a region past the capacity was created";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNoSpace);
    EXPECT_NE(std::string(e.what()).find("\"main\""), std::string::npos) << e.what();
  }
  EXPECT_THROW(target.create(2 << 20), Error);
  TargetInfo info = server.provider->targets().front();
  EXPECT_EQ(info.regions, 3u);  // the failed call left nothing behind
  EXPECT_EQ(info.used_bytes + info.free_bytes, info.capacity);
  std::vector<std::byte> back(data.size());
  target.read(ids[1], 0, back);
  EXPECT_EQ(back, data);
  target.erase(ids[1]);
  const RegionId again = target.create_write_persist(data);  // the erased space, reused
  target.read(again, 0, back);
  EXPECT_EQ(back, data);
}

TEST_P(FileTarget, APathThatCannotBeOpenedIsAnIoErrorNamingIt) {
  const std::string bad = (dir_.path() / "missing-folder" / "data").string();
  const TargetConfig target = config("t", {{"path", bad}});
  try {
    BlobServer server{ProviderOptions{.targets = {target}}};
    FAIL() << "a target in a missing folder opened";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIoError);
    EXPECT_NE(std::string(e.what()).find("missing-folder"), std::string::npos) << e.what();
  }
  BlobServer server{ProviderOptions{}};
  try {
    server.client.create_target(server.server.address(), kProviderId, target);
    FAIL() << "a target in a missing folder was created by RPC";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIoError);
  }
  EXPECT_TRUE(server.client.list_targets(server.server.address(), kProviderId).empty());
}

TEST_P(FileTarget, DirectIoHandlesUnalignedOffsetsAndSizes) {
  // O_DIRECT needs a file system that supports it (not tmpfs).
  const std::string probe = (dir_.path() / "probe").string();
  const int fd = ::open(probe.c_str(), O_CREAT | O_RDWR | O_DIRECT, 0644);
  if (fd < 0) GTEST_SKIP() << "O_DIRECT is not supported under " << dir_.path();
  ::close(fd);
  BlobServer server{options({{"direct_io", true}})};
  const Target target = server.open();
  auto data = pattern(1000003, 2);
  const RegionId id = target.create_write_persist(data);
  const auto patch = pattern(777, 3);
  target.write(id, 4093, patch);  // inside a block, across a block boundary
  std::copy(patch.begin(), patch.end(), data.begin() + 4093);
  std::vector<std::byte> back(data.size());
  target.read(id, 0, back);
  EXPECT_EQ(checksum(back), checksum(data));
  std::vector<std::byte> piece(10);
  target.read(id, 999990, piece);
  EXPECT_TRUE(std::equal(piece.begin(), piece.end(), data.begin() + 999990));
}

TEST_P(FileTarget, ThePreadPwriteEngineWorksToo) {
  BlobServer server{options({{"io_engine", "psync"}})};
  const Target target = server.open();
  const auto data = pattern(300000, 4);
  const RegionId id = target.create_write_persist(data);
  std::vector<std::byte> back(data.size());
  target.read(id, 0, back);
  EXPECT_EQ(back, data);
  EXPECT_NE(server.provider->targets().front().config.find("psync"), std::string::npos);
}

TEST_P(FileTarget, ATornJournalTailIsCutOffOnRestart) {
  RegionId id;
  const auto data = pattern(5000, 5);
  {
    BlobServer server{options()};
    id = server.open().create_write_persist(data);
  }
  {
    const uint64_t end = journal_end(journal_path());
    std::fstream journal(journal_path(), std::ios::in | std::ios::out | std::ios::binary);
    journal.seekp(static_cast<std::streamoff>(end));
    journal << "half a record" << std::string(80, '\x7f');  // and damaged bytes after it
  }
  {
    BlobServer server{options()};
    const Target target = server.open();
    std::vector<std::byte> back(data.size());
    target.read(id, 0, back);
    EXPECT_EQ(back, data);
    target.create_write_persist(data);  // appended where the torn record was
  }
  BlobServer server{options()};
  EXPECT_EQ(server.provider->targets().front().regions, 2u);
}

TEST_P(FileTarget, DamagedFilesAreReportedAsCorruption) {
  {
    BlobServer server{options()};
    server.open().create(10);
  }
  {
    std::fstream file(data_path(), std::ios::in | std::ios::out | std::ios::binary);
    file.write("NOTABLOB", 8);
  }
  try {
    BlobServer server{options()};
    FAIL() << "a damaged file opened";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
    EXPECT_NE(std::string(e.what()).find(data_path()), std::string::npos) << e.what();
  }
}

// Driven through the backend itself (no RPC per operation), so that the thousands of records a
// compaction needs cost milliseconds.
TEST_P(FileTarget, ManyErasesCompactTheJournalAndKeepTheLayout) {
  std::vector<std::pair<RegionId, uint64_t>> kept;
  {
    auto backend = make_backend();
    for (int i = 0; i < 2500; ++i) {
      RegionId a, b;
      ASSERT_TRUE(backend->create(3000, a).ok());
      ASSERT_TRUE(backend->create(100, b).ok());
      ASSERT_TRUE(backend->erase(b).ok());
      if (i % 500 == 0) {
        const auto data = pattern(3000, static_cast<uint8_t>(i));
        ASSERT_TRUE(backend->write(a, 0, data).ok());
        ASSERT_TRUE(backend->persist(a, 0, data.size()).ok());
        kept.emplace_back(a, checksum(data));
      } else {
        ASSERT_TRUE(backend->erase(a).ok());
      }
    }
    const Usage usage = backend->usage();
    EXPECT_EQ(usage.used_bytes + usage.free_bytes, usage.capacity);
  }
  // Compacted: far fewer than the ~7500 records written.
  EXPECT_LT(journal_end(journal_path()), 64u + 4000u * 40u);
  BlobServer server{options()};
  const Target target = server.open();
  EXPECT_EQ(server.provider->targets().front().regions, kept.size());
  for (const auto& [id, sum] : kept) {
    std::vector<std::byte> back(3000);
    target.read(id, 0, back);
    EXPECT_EQ(checksum(back), sum);
  }
  const RegionId fresh = target.create(1);
  EXPECT_GT(fresh.number(), 5000u);  // ids of erased regions are not handed out again
}

// The journal file is grown ahead of its records, a MiB (26214 records) at a time.
TEST_P(FileTarget, TheJournalKeepsEveryRecordPastItsFirstGrowth) {
  const int regions = 27000;
  {
    auto backend = make_backend({{"capacity", uint64_t{128} << 20}});
    for (int i = 0; i < regions; ++i) {
      RegionId id;
      ASSERT_TRUE(backend->create(1, id).ok());
    }
    RegionId last;
    ASSERT_TRUE(backend->create(1, last).ok());
    ASSERT_TRUE(backend->persist(last, 0, 0).ok());
    EXPECT_GT(std::filesystem::file_size(journal_path()), uint64_t{1} << 20);
  }
  auto reopened = make_backend({{"capacity", uint64_t{128} << 20}});
  EXPECT_EQ(reopened->usage().regions, uint64_t{regions} + 1);
}

TEST_P(FileTarget, CachedPagesAreOfferedForDirectWritesThatPersistLikeWrites) {
  auto data = pattern(3 * 4096 + 100, 7);
  RegionId id;
  {
    auto backend = make_backend({{"mapped_writes", true}});
    ASSERT_TRUE(backend->create(data.size(), id).ok());
    ASSERT_TRUE(backend->write(id, 0, data).ok());  // its pages are in the page cache now
    DirectAccess access;
    ASSERT_TRUE(backend->direct_write(id, 50, 8192, access));
    ASSERT_EQ(access.bytes.size(), 8192u);
    const auto patch = pattern(8192, 8);
    std::copy(patch.begin(), patch.end(), access.bytes.begin());
    std::copy(patch.begin(), patch.end(), data.begin() + 50);
    ASSERT_TRUE(backend->persist(id, 0, data.size()).ok());
    EXPECT_FALSE(backend->direct_write(id, 0, data.size() + 1, access));  // past the end
    EXPECT_FALSE(backend->direct_write(RegionId::from_number(999), 0, 1, access));
  }
  auto reopened = make_backend({{"mapped_writes", true}});
  std::vector<std::byte> back(data.size());
  ASSERT_TRUE(reopened->read(id, 0, back).ok());
  EXPECT_EQ(back, data);
}

TEST_P(FileTarget, MappedWritesCanBeTurnedOffAndAreNeverUsedWithDirectIo) {
  for (const nlohmann::json& overrides :
       {nlohmann::json{{"mapped_writes", false}}, nlohmann::json{{"direct_io", true}}}) {
    const std::string name = overrides.begin().key();
    std::unique_ptr<Backend> backend;
    try {
      backend = make_backend(overrides, name);
    } catch (const Error& e) {  // O_DIRECT refused by this file system
      continue;
    }
    const auto data = pattern(8192, 9);
    RegionId id;
    ASSERT_TRUE(backend->create(data.size(), id).ok());
    ASSERT_TRUE(backend->write(id, 0, data).ok());
    DirectAccess access;
    EXPECT_FALSE(backend->direct_write(id, 0, data.size(), access)) << name;
  }
  BlobServer server{options()};
  EXPECT_NE(server.provider->targets().front().config.find("\"mapped_writes\":false"),
            std::string::npos);
}

TEST_P(FileTarget, AnErasedRegionsSpaceIsNotReusedWhileAWriteIntoItIsInProgress) {
  auto backend = make_backend({{"capacity", 4 * 4096}, {"mapped_writes", true}});
  RegionId erased, other;
  ASSERT_TRUE(backend->create(3 * 4096, erased).ok());
  ASSERT_TRUE(backend->create(4096, other).ok());  // the target is full
  const auto data = pattern(3 * 4096, 12);
  ASSERT_TRUE(backend->write(erased, 0, data).ok());
  DirectAccess in_progress;  // a pull into the region, still running
  if (!backend->direct_write(erased, 0, data.size(), in_progress)) {
    GTEST_SKIP() << "the file system under " << dir_.path() << " gave the file holes";
  }
  ASSERT_TRUE(backend->erase(erased).ok());
  EXPECT_EQ(backend->write(erased, 0, data).code, ErrorCode::kUnknownRegion);
  RegionId reused;
  EXPECT_EQ(backend->create(3 * 4096, reused).code, ErrorCode::kNoSpace);
  std::fill(in_progress.bytes.begin(), in_progress.bytes.end(), std::byte{0xee});  // it lands
  in_progress = {};                                                                // and ends
  ASSERT_TRUE(backend->create(3 * 4096, reused).ok());
  const Usage usage = backend->usage();
  EXPECT_EQ(usage.used_bytes + usage.free_bytes, usage.capacity);
}

TEST_P(FileTarget, LargeWritesReadBackTheSameMappedOrStaged) {
  for (const bool mapped : {true, false}) {
    const std::string name = mapped ? "mapped" : "staged";
    BlobServer server{
        ProviderOptions{.targets = {config(name, {{"mapped_writes", mapped}})},
                        .staging = {.buffer_size = 64 << 10, .buffers = 4, .pipeline_depth = 3}}};
    const Target target = server.open(name);
    auto data = pattern((1 << 20) + 4321, 10);  // 17 chunks
    const RegionId id = target.create_write_persist(data);
    const auto patch = pattern(700001, 11);
    target.write(id, 1001, patch);  // into cached pages: through the mapping when allowed
    target.persist(id, 0, data.size());
    std::copy(patch.begin(), patch.end(), data.begin() + 1001);
    std::vector<std::byte> back(data.size());
    target.read(id, 0, back);
    EXPECT_EQ(checksum(back), checksum(data)) << name;
  }
}

TEST_P(FileTarget, ATargetLargerThanTheFileSystemIsRefusedAndLeavesNothingBehind) {
  nlohmann::json overrides = {{"capacity", uint64_t{1} << 50}};  // 1 PiB
  if (directory()) overrides["file_size"] = uint64_t{1} << 40;
  try {
    BlobServer server{options(overrides)};
    FAIL() << "a target of 1 PiB was created";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIoError);
    EXPECT_NE(std::string(e.what()).find(std::strerror(ENOSPC)), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(target_path()), std::string::npos) << e.what();
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir_.path() / "main"));
  BlobServer server{options()};  // one that fits is made in the same place afterwards
  EXPECT_EQ(server.provider->targets().size(), 1u);
}

TEST_P(FileTarget, AZeroFilledTargetHasNoSpaceLeftUnwritten) {
  const auto data = pattern(3 << 20, 23);
  RegionId id;
  {
    BlobServer server{options({{"capacity", 4 << 20}, {"zero_fill", true}})};
    id = server.open().create_write_persist(data);
    EXPECT_NE(server.provider->targets().front().config.find("\"zero_fill\":true"),
              std::string::npos);
  }
  const int unwritten = unwritten_extents(data_path());
  if (unwritten < 0) GTEST_SKIP() << "the file system under " << dir_.path() << " has no FIEMAP";
  EXPECT_EQ(unwritten, 0);
  if (directory()) {
    EXPECT_EQ(unwritten_extents(target_path() + "/data.00003"), 0);
  }
  BlobServer server{options()};
  std::vector<std::byte> back(data.size());
  server.open().read(id, 0, back);
  EXPECT_EQ(checksum(back), checksum(data));
}

INSTANTIATE_TEST_SUITE_P(Layouts, FileTarget, ::testing::ValuesIn(examples_of_type("file")),
                         [](const auto& info) { return example_test_name(info.param); });

}  // namespace
}  // namespace dango::blob
