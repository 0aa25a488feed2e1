// The data files of a file target in the directory layout: regions spanning files of the
// configured size, sizes kept by an existing target, bad layout options, missing data files and
// mismatched layouts, and a destroyed target's folder. (What both layouts share is run on each
// in file_target_test.cpp.)

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "blob_test_util.hpp"

namespace dango::blob {
namespace {

using namespace testing;

class DirectoryTarget : public ::testing::Test {
 protected:
  TargetConfig config(const nlohmann::json& overrides = nlohmann::json::object()) {
    return target_config("file.directory", dir_.path(), "main", overrides);
  }
  std::filesystem::path folder() const { return dir_.path() / "main" / "blob-target"; }
  TempDir dir_;
};

TEST_F(DirectoryTarget, RegionsSpanDataFilesOfTheConfiguredSize) {
  // Three files: 2 MiB, 2 MiB and the last 1 MiB.
  const nlohmann::json sizes = {{"capacity", 5 << 20}, {"file_size", 2 << 20}};
  const auto data = pattern((4 << 20) + 12345, 21);
  RegionId id;
  {
    BlobServer server{ProviderOptions{.targets = {config(sizes)}}};
    id = server.open().create_write_persist(data);  // the first extent: from file 0 on
    const TargetInfo info = server.provider->targets().front();
    EXPECT_EQ(info.capacity, uint64_t{5} << 20);
    const auto effective = nlohmann::json::parse(info.config);
    EXPECT_EQ(effective["layout"], "directory");
    EXPECT_EQ(effective["file_size"], 2 << 20);
  }
  EXPECT_EQ(std::filesystem::file_size(folder() / "data.00000"), 4096u + (2 << 20));
  EXPECT_EQ(std::filesystem::file_size(folder() / "data.00001"), 4096u + (2 << 20));
  EXPECT_EQ(std::filesystem::file_size(folder() / "data.00002"), 4096u + (1 << 20));
  EXPECT_FALSE(std::filesystem::exists(folder() / "data.00003"));
  EXPECT_TRUE(std::filesystem::exists(folder() / "journal"));
  // The region's third MiB starts the second file, after its header.
  std::ifstream second(folder() / "data.00001", std::ios::binary);
  second.seekg(4096);
  std::vector<char> bytes(1000);
  second.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  EXPECT_EQ(std::memcmp(bytes.data(), data.data() + (2 << 20), bytes.size()), 0);
  // Restarted with other sizes: the existing target keeps its own.
  BlobServer server{
      ProviderOptions{.targets = {config({{"capacity", 64 << 20}, {"file_size", 4 << 20}})}}};
  std::vector<std::byte> back(data.size());
  server.open().read(id, 0, back);
  EXPECT_EQ(checksum(back), checksum(data));
  EXPECT_EQ(server.provider->targets().front().capacity, uint64_t{5} << 20);
}

TEST_F(DirectoryTarget, BadLayoutOptionsAreRefusedNamingTheKey) {
  const std::pair<nlohmann::json, std::string> cases[] = {
      {{{"layout", "folder"}}, "targets[0].layout"},
      {{{"layout", "file"}, {"file_size", 1 << 20}}, "targets[0].file_size"},
      {{{"file_size", 1000}}, "targets[0].file_size"},
      {{{"capacity", uint64_t{1} << 40}, {"file_size", 4096}}, "targets[0].file_size"}};
  for (const auto& [overrides, key] : cases) {
    try {
      BlobServer server{ProviderOptions{.targets = {config(overrides)}}};
      ADD_FAILURE() << overrides.dump() << " was accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
  EXPECT_FALSE(std::filesystem::exists(folder()));
}

TEST_F(DirectoryTarget, MissingDataFilesAndMismatchedLayoutsAreRefusedNamingThePath) {
  { BlobServer server{ProviderOptions{.targets = {config({{"capacity", 4 << 20}})}}}; }
  const std::string third = (folder() / "data.00002").string();
  std::filesystem::rename(third, third + ".moved");
  try {
    BlobServer server{ProviderOptions{.targets = {config()}}};
    FAIL() << "a target with a missing data file opened";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
    EXPECT_NE(std::string(e.what()).find(third), std::string::npos) << e.what();
  }
  std::filesystem::rename(third + ".moved", third);
  TargetConfig single = config({{"layout", "file"}});
  single.config.erase("file_size");
  try {  // the folder, opened as a single-file target
    BlobServer server{ProviderOptions{.targets = {single}}};
    FAIL() << "a folder opened as a single-file target";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIoError);
    EXPECT_NE(std::string(e.what()).find("is a folder"), std::string::npos) << e.what();
  }
  const std::string plain = (dir_.path() / "main" / "plain").string();
  std::ofstream(plain) << "not a folder";
  try {
    BlobServer server{ProviderOptions{.targets = {config({{"path", plain}})}}};
    FAIL() << "a directory target was made over a file";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIoError);
    EXPECT_NE(std::string(e.what()).find(plain), std::string::npos) << e.what();
  }
  BlobServer server{ProviderOptions{.targets = {config()}}};  // intact again
  EXPECT_EQ(server.provider->targets().front().capacity, uint64_t{4} << 20);
}

TEST_F(DirectoryTarget, ADestroyedTargetTakesItsFolderWithIt) {
  BlobServer server{ProviderOptions{.targets = {config({{"capacity", 4 << 20}})}}};
  server.open().create_write_persist(pattern(3 << 20, 22));
  ASSERT_TRUE(std::filesystem::exists(folder() / "data.00003"));
  server.provider->destroy_target("main");
  EXPECT_TRUE(eventually([&] { return !std::filesystem::exists(folder()); }, 5000ms));
}

}  // namespace
}  // namespace dango::blob
