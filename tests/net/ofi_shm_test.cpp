// The same transport over libfabric's shm provider (ofi+shm), whose endpoint names are not
// socket addresses (printed in hex) and which requires FI_MR_VIRT_ADDR: messages both ways,
// messages larger than a packet, and get/put across segments.

#include <gtest/gtest.h>

#include <cstring>

#include "dango/common/error.hpp"
#include "net_test_util.hpp"

namespace dango::net {
namespace {

using namespace testing;

std::string shm_unavailable() {
  try {
    make_transport("ofi+shm");
    return {};
  } catch (const dango::Error& e) {
    return e.what();
  }
}

TEST(OfiShm, MessagesAndBulkTransfersWork) {
  if (auto why = shm_unavailable(); !why.empty()) GTEST_SKIP() << "no shm provider: " << why;
  auto s = make_transport("ofi+shm://server");
  auto c = make_transport("ofi+shm");
  ASSERT_TRUE(s->address().starts_with("ofi+shm://0x")) << s->address();
  EXPECT_TRUE(c->address().empty());
  Echo echo(*s);
  Inbox inbox;
  s->set_handler(&echo);
  c->set_handler(&inbox);
  auto peer = c->lookup(s->address());
  std::string big(300000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i % 253);
  ASSERT_TRUE(send_text(*c, peer, "hi").ok());
  ASSERT_TRUE(send_text(*c, peer, big).ok());
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return inbox.count() == 2; }));
  EXPECT_EQ(inbox.message(0).second, "hi");
  EXPECT_TRUE(inbox.message(1).second == big);

  std::vector<std::byte> remote(1 << 20), local(1 << 20);
  for (size_t i = 0; i < remote.size(); ++i) remote[i] = static_cast<std::byte>(i * 13);
  std::span<std::byte> remote_segments[] = {std::span(remote).first(1000),
                                            std::span(remote).subspan(1000)};
  std::span<std::byte> local_segments[] = {std::span(local).first(300000),
                                           std::span(local).subspan(300000)};
  auto remote_region = s->register_memory(remote_segments, Access::kReadWrite);
  auto local_region = c->register_memory(local_segments, Access::kReadWrite);
  Done got;
  c->get(peer, remote_region->descriptor(), 0, *local_region, 0, remote.size(), &got);
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return got.fired(); }));
  ASSERT_TRUE(got.status().ok()) << got.status().message;
  EXPECT_EQ(local, remote);
  std::memset(local.data(), 0x11, local.size());
  Done put;
  c->put(peer, remote_region->descriptor(), 10, *local_region, 20, 500000, &put);
  ASSERT_TRUE(drive({c.get(), s.get()}, [&] { return put.fired(); }));
  ASSERT_TRUE(put.status().ok()) << put.status().message;
  EXPECT_EQ(remote[10], std::byte{0x11});
  EXPECT_EQ(remote[500009], std::byte{0x11});
  EXPECT_EQ(remote[500010], static_cast<std::byte>(500010 * 13));
}

}  // namespace
}  // namespace dango::net
