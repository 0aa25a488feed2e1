// The kv wire types: the sizes of a batch travel as the bytes of a vector of 8-byte integers and
// are read in place at the provider.

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "../../../src/services/kv/protocol.hpp"
#include "dango/rpc/serialize.hpp"

namespace dango::kv::protocol {
namespace {

std::vector<std::byte> encode(const Sizes& sizes) {
  std::vector<std::byte> out;
  rpc::serialize_to(out, sizes);
  return out;
}

TEST(KvProtocolSizes, TravelAsTheBytesOfAVectorOfU64) {
  const std::vector<size_t> sizes{16, 0, 65536, 7};
  std::vector<std::byte> expected;
  rpc::serialize_to(expected, std::vector<uint64_t>(sizes.begin(), sizes.end()));
  EXPECT_EQ(encode(Sizes(sizes)), expected);
}

TEST(KvProtocolSizes, AreReadInPlaceAtAnyAlignment) {
  const std::vector<size_t> sizes{16, 1, 4096, 1ull << 40};
  const std::vector<std::byte> wire = encode(Sizes(sizes));
  for (size_t shift = 0; shift < 8; ++shift) {
    std::vector<std::byte> message(shift, std::byte{0xff});
    message.insert(message.end(), wire.begin(), wire.end());
    const auto read = rpc::deserialize_from<Sizes>(std::span(message).subspan(shift));
    ASSERT_EQ(read.size(), sizes.size()) << "shift " << shift;
    for (size_t i = 0; i < sizes.size(); ++i) EXPECT_EQ(read[i], sizes[i]) << "shift " << shift;
  }
}

TEST(KvProtocolSizes, ACountLargerThanTheMessageIsADecodeError) {
  std::vector<std::byte> wire = encode(Sizes(std::vector<size_t>{1, 2}));
  wire.resize(wire.size() - 1);
  EXPECT_THROW(rpc::deserialize_from<Sizes>(wire), rpc::DecodeError);
}

TEST(KvProtocolSizes, EmptySizesAreAnEmptyBatch) {
  const auto read = rpc::deserialize_from<Sizes>(encode(Sizes()));
  EXPECT_TRUE(read.empty());
  EXPECT_EQ(read.size(), 0u);
}

}  // namespace
}  // namespace dango::kv::protocol
