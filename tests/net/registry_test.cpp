// The transport registry: schemes come from registrations, unknown ones are named in errors.

#include <gtest/gtest.h>

#include <algorithm>

#include "dango/common/error.hpp"
#include "dango/net/transport.hpp"

namespace dango::net {
namespace {

TEST(TransportRegistry, ListsTcp) {
  auto schemes = registered_transports();
  EXPECT_NE(std::find(schemes.begin(), schemes.end(), "tcp"), schemes.end());
}

TEST(TransportRegistry, UnknownSchemeErrorNamesItAndTheKnownOnes) {
  try {
    make_transport("carrier-pigeon://coop:1");
    FAIL() << "no error";
  } catch (const NetworkError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("carrier-pigeon"), std::string::npos) << what;
    EXPECT_NE(what.find("tcp"), std::string::npos) << what;
  }
}

TEST(TransportRegistry, SplitsAddresses) {
  EXPECT_EQ(split_address("tcp://127.0.0.1:1"),
            std::make_pair(std::string_view("tcp"), std::string_view("127.0.0.1:1")));
  EXPECT_EQ(split_address("tcp"), std::make_pair(std::string_view("tcp"), std::string_view()));
  EXPECT_EQ(split_address("ofi+tcp://[::1]:2").first, "ofi+tcp");
}

TEST(TransportRegistry, RegisteredFactoryIsUsed) {
  register_transport("test-null", [](std::string_view, const TransportOptions&) {
    return std::unique_ptr<Transport>();
  });
  EXPECT_EQ(make_transport("test-null://x"), nullptr);
  auto schemes = registered_transports();
  EXPECT_NE(std::find(schemes.begin(), schemes.end(), "test-null"), schemes.end());
}

TEST(TransportRegistry, EachSchemeNamesALoopbackAddressForTestsAndBenchmarks) {
  EXPECT_EQ(loopback_address("tcp"), "tcp://127.0.0.1:0");
  auto null_factory = [](std::string_view, const TransportOptions&) {
    return std::unique_ptr<Transport>();
  };
  register_transport("test-named", null_factory, "test-named://here");
  EXPECT_EQ(loopback_address("test-named"), "test-named://here");
  EXPECT_THROW(loopback_address("nonesuch"), NetworkError);
}

}  // namespace
}  // namespace dango::net
