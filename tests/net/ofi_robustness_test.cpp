// The ofi transport facing malformed packets (sent by a bare libfabric endpoint): each is dropped,
// and nothing else is disturbed. Processes killed and restarted are in
// transport_processes_test.cpp, for every transport.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>
#include <random>

#include "net_test_util.hpp"
#include "ofi_test_util.hpp"

namespace dango::net {
namespace {

using namespace testing;

std::string header(uint8_t type, uint8_t name_length, uint64_t length, uint64_t offset,
                   uint64_t sequence = 0, uint32_t magic = 0x49464f44) {
  // Mirror of the packet header (src/net/ofi/wire.hpp): magic, version, type, flags, name
  // length, incarnation, destination, message length, offset, sequence in the sender's stream.
  std::string h(48, '\0');
  std::memcpy(h.data(), &magic, 4);
  h[4] = 2;
  h[5] = static_cast<char>(type);
  h[7] = static_cast<char>(name_length);
  uint64_t fields[] = {0x1234, 0, length, offset, sequence};
  std::memcpy(h.data() + 8, fields, sizeof fields);
  return h;
}

TEST(OfiRobustness, MalformedPacketsAreDroppedAndOthersServed) {
  DANGO_SKIP_WITHOUT_OFI_TCP();
  auto s = make_transport("ofi+tcp://127.0.0.1:0", {.max_message_size = 1 << 20});
  Echo echo(*s);
  s->set_handler(&echo);
  ProgressThread progress(*s);
  const auto port = static_cast<uint16_t>(std::stoi(s->address().substr(s->address().rfind(':') + 1)));

  RawFabricSender raw;
  const std::string& name = raw.name();
  const auto n = static_cast<uint8_t>(name.size());
  std::mt19937 rng(7);
  std::string noise(3000, '\0');
  for (auto& c : noise) c = static_cast<char>(rng());
  const std::string packets[] = {
      "",
      "x",
      noise,
      // Refused before their stream position is looked at:
      header(1, n, 5, 0, 0, 0xdeadbeef) + name + "hello",            // wrong magic
      header(1, 200, 5, 0) + name,                                   // name longer than packet
      header(1, 3, 5, 0) + "abc" + "hello",                          // not an address
      header(9, n, 0, 0) + name,                                     // unknown type
      // Handled in stream order (positions 0, 1, ...), each refused:
      header(1, n, uint64_t{1} << 40, 0, 0) + name + "xx",           // over max_message_size
      header(1, n, 10, 4, 1) + name + "abcdef",                      // middle without a start
      header(1, n, 10, 0, 2) + name + "abcdefghijklmnop",            // longer than announced
      header(1, n, 10, 0, 3) + name + "abc",                         // start...
      header(1, n, 10, 7, 4) + name + "xyz",                         // ...then a gap
      header(1, n, 4, 0, 5) + name + std::string(200000, 'z'),       // larger than a packet
  };
  for (const auto& packet : packets) raw.send(port, packet);

  // The server survived and serves a well-behaved client; the garbage produced no message.
  auto c = make_transport("ofi+tcp");
  Inbox inbox;
  c->set_handler(&inbox);
  ASSERT_TRUE(send_text(*c, c->lookup(s->address()), "still serving").ok());
  ASSERT_TRUE(drive({c.get()}, [&] { return inbox.count() == 1; }));
  EXPECT_EQ(inbox.message(0).second, "still serving");
  EXPECT_EQ(echo.echoed.load(), 1u);
}

}  // namespace
}  // namespace dango::net
