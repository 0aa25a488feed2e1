// The raw libfabric ping-pong (ofi_baselines.hpp). The helper "ofi_baseline" opens an endpoint,
// prints its name in hex, learns the client's name from the first message (the bytes after the
// payload) and echoes every message until it has echoed as many as it was told.

#include "ofi_baselines.hpp"

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "suite.hpp"

namespace dango::bench {
namespace {

constexpr unsigned kWatchdogSeconds = 60;  // the helper ends itself after this long
constexpr std::size_t kMaxName = 256;

void check(long rc, const char* what) {
  if (rc != 0) {
    throw std::runtime_error(std::string("ofi baseline: ") + what + ": " +
                             fi_strerror(static_cast<int>(rc < 0 ? -rc : rc)));
  }
}

// One reliable-datagram endpoint with its own fabric, domain, address vector and a completion
// queue without a wait object (the cheapest to poll).
class RawEndpoint {
 public:
  explicit RawEndpoint(const std::string& provider) {
    fi_info* hints = fi_allocinfo();
    if (hints == nullptr) throw std::runtime_error("ofi baseline: out of memory");
    hints->caps = FI_MSG;
    hints->mode = FI_CONTEXT | FI_CONTEXT2;
    hints->ep_attr->type = FI_EP_RDM;
    hints->domain_attr->mr_mode =
        FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY | FI_MR_ENDPOINT;
    hints->fabric_attr->prov_name = ::strdup(provider.c_str());
    const bool ip = provider.starts_with("tcp") || provider.starts_with("verbs");
    int rc = fi_getinfo(FI_VERSION(1, 17), ip ? "127.0.0.1" : nullptr, ip ? "0" : nullptr,
                        ip ? FI_SOURCE : 0, hints, &info_);
    fi_freeinfo(hints);
    check(rc, "fi_getinfo");
    if ((info_->domain_attr->mr_mode & FI_MR_LOCAL) != 0) {
      throw std::runtime_error("ofi baseline: provider " + provider + " needs FI_MR_LOCAL");
    }
    check(fi_fabric(info_->fabric_attr, &fabric_, nullptr), "fi_fabric");
    check(fi_domain(fabric_, info_, &domain_, nullptr), "fi_domain");
    fi_cq_attr cq_attr{};
    cq_attr.format = FI_CQ_FORMAT_CONTEXT;
    cq_attr.wait_obj = FI_WAIT_NONE;
    check(fi_cq_open(domain_, &cq_attr, &cq_, nullptr), "fi_cq_open");
    fi_av_attr av_attr{};
    av_attr.type = FI_AV_TABLE;
    check(fi_av_open(domain_, &av_attr, &av_, nullptr), "fi_av_open");
    check(fi_endpoint(domain_, info_, &ep_, nullptr), "fi_endpoint");
    check(fi_ep_bind(ep_, &av_->fid, 0), "binding the address vector");
    check(fi_ep_bind(ep_, &cq_->fid, FI_TRANSMIT | FI_RECV), "binding the completion queue");
    check(fi_enable(ep_), "fi_enable");
    name_.resize(kMaxName);
    size_t length = name_.size();
    check(fi_getname(&ep_->fid, name_.data(), &length), "fi_getname");
    name_.resize(length);
  }
  ~RawEndpoint() {
    for (fid* f : {ep_ ? &ep_->fid : nullptr, av_ ? &av_->fid : nullptr, cq_ ? &cq_->fid : nullptr,
                   domain_ ? &domain_->fid : nullptr, fabric_ ? &fabric_->fid : nullptr}) {
      if (f != nullptr) fi_close(f);
    }
    if (info_ != nullptr) fi_freeinfo(info_);
  }
  RawEndpoint(const RawEndpoint&) = delete;
  RawEndpoint& operator=(const RawEndpoint&) = delete;

  const std::string& name() const { return name_; }
  fi_addr_t insert(const std::string& name) {
    fi_addr_t addr = FI_ADDR_NOTAVAIL;
    if (fi_av_insert(av_, name.data(), 1, &addr, 0, nullptr) != 1) {
      throw std::runtime_error("ofi baseline: fi_av_insert failed");
    }
    return addr;
  }
  void post_receive(std::vector<char>& buffer) {
    check(fi_recv(ep_, buffer.data(), buffer.size(), nullptr, FI_ADDR_UNSPEC, &receive_), "fi_recv");
  }
  void send(const char* bytes, size_t length, fi_addr_t to) {
    ssize_t rc;
    while ((rc = fi_send(ep_, bytes, length, nullptr, to, &send_)) == -FI_EAGAIN) poll();
    check(rc, "fi_send");
  }
  // Busy-polls until the posted receive completes.
  void wait_receive() {
    while (!poll()) {
    }
  }

 private:
  // Reads completions; true when one was the receive's.
  bool poll() {
    fi_cq_entry entries[8];
    ssize_t n = fi_cq_read(cq_, entries, 8);
    if (n == -FI_EAGAIN) return false;
    if (n < 0) {
      fi_cq_err_entry error{};
      fi_cq_readerr(cq_, &error, 0);
      throw std::runtime_error(std::string("ofi baseline: operation failed: ") +
                               fi_strerror(error.err));
    }
    bool received = false;
    for (ssize_t i = 0; i < n; ++i) received |= entries[i].op_context == &receive_;
    return received;
  }

  fi_info* info_ = nullptr;
  fid_fabric* fabric_ = nullptr;
  fid_domain* domain_ = nullptr;
  fid_cq* cq_ = nullptr;
  fid_av* av_ = nullptr;
  fid_ep* ep_ = nullptr;
  std::string name_;
  fi_context2 receive_{};
  fi_context2 send_{};
};

std::string to_hex(const std::string& bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string from_hex(const std::string& text) {
  std::string out;
  for (size_t i = 0; i + 1 < text.size(); i += 2) {
    out += static_cast<char>(std::stoi(text.substr(i, 2), nullptr, 16));
  }
  return out;
}

// args: provider, message size, messages to echo.
int ofi_baseline_server(const std::vector<std::string>& args) {
  signal(SIGALRM, SIG_DFL);
  alarm(kWatchdogSeconds);
  if (args.size() != 3) return 2;
  RawEndpoint endpoint(args[0]);
  const std::size_t msg_size = std::stoull(args[1]);
  const std::size_t count = std::stoull(args[2]);
  std::printf("%s\n", to_hex(endpoint.name()).c_str());
  std::fflush(stdout);
  std::vector<char> buffer(msg_size + kMaxName);
  endpoint.post_receive(buffer);
  endpoint.wait_receive();
  const fi_addr_t client = endpoint.insert(std::string(buffer.data() + msg_size, kMaxName));
  for (std::size_t i = 0; i < count; ++i) {
    if (i > 0) endpoint.wait_receive();
    endpoint.post_receive(buffer);
    endpoint.send(buffer.data(), msg_size, client);
  }
  sleep(1);  // the last echo leaves before the endpoint closes; the client ends the helper
  return 0;
}

DANGO_REGISTER_BENCH_HELPER(ofi_baseline, ofi_baseline_server);

}  // namespace

std::string ofi_provider_of(const std::string& scheme) {
  constexpr std::string_view kPrefix = "ofi+";
  if (!scheme.starts_with(kPrefix) || scheme.size() == kPrefix.size()) return {};
  std::string name = scheme.substr(kPrefix.size());
  // Connection-oriented providers get reliable datagrams from rxm (src/net/ofi/fabric.cpp).
  return name == "tcp" || name == "verbs" ? name + ";ofi_rxm" : name;
}

PingPongResult ofi_pingpong(const std::string& provider, std::size_t msg_size,
                            std::size_t iterations) {
  if (msg_size == 0) throw std::invalid_argument("ofi_pingpong: msg_size must be >= 1");
  const std::size_t warmup = pingpong_warmup(iterations);
  HelperProcess server("ofi_baseline",
                       {provider, std::to_string(msg_size), std::to_string(warmup + iterations)});
  RawEndpoint endpoint(provider);
  const fi_addr_t to = endpoint.insert(from_hex(server.read_line()));
  std::vector<char> out(msg_size + kMaxName, 'p'), in(msg_size + kMaxName);
  std::memcpy(out.data() + msg_size, endpoint.name().data(), endpoint.name().size());
  endpoint.post_receive(in);
  auto round_trip = [&](std::size_t length) {
    endpoint.send(out.data(), length, to);
    endpoint.wait_receive();
    endpoint.post_receive(in);
  };
  round_trip(msg_size + kMaxName);  // carries our name; warm-up goes on with the rest
  return time_round_trips(warmup - 1, iterations, [&] { round_trip(msg_size); });
}

}  // namespace dango::bench
