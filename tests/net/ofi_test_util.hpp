#pragma once
// Helpers of the ofi transport tests: whether the tcp provider exists on this machine, and a bare
// libfabric endpoint that sends packets the transport would never build.

#include <gtest/gtest.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "dango/common/error.hpp"
#include "dango/net/transport.hpp"

namespace dango::net::testing {

// Empty when ofi+tcp works here; otherwise why not.
inline const std::string& ofi_tcp_unavailable() {
  static const std::string reason = [] {
    try {
      make_transport("ofi+tcp");
      return std::string();
    } catch (const dango::Error& e) {
      return std::string(e.what());
    }
  }();
  return reason;
}

#define DANGO_SKIP_WITHOUT_OFI_TCP()                                                   \
  do {                                                                                 \
    if (!::dango::net::testing::ofi_tcp_unavailable().empty()) {                       \
      GTEST_SKIP() << "libfabric tcp provider unavailable: "                          \
                   << ::dango::net::testing::ofi_tcp_unavailable();                    \
    }                                                                                  \
  } while (0)

}  // namespace dango::net::testing

// ----------------------------------------------------------------------------------------------
// A bare libfabric endpoint on the tcp provider, for sending packets the transport would never
// build. The test program does not link libfabric itself: the few exported functions come from
// the copy already loaded by the transport library (dlsym); the rest are inline in the headers.

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>

#include <chrono>
#include <thread>

namespace dango::net::testing {

class RawFabricSender {
 public:
  RawFabricSender() {
    void* lib = ::dlopen("libfabric.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (lib == nullptr) lib = ::dlopen("libfabric.so.1", RTLD_NOW);
    if (lib == nullptr) throw std::runtime_error("libfabric.so.1 not loadable");
    using GetInfo = int (*)(uint32_t, const char*, const char*, uint64_t, const fi_info*,
                            fi_info**);
    using DupInfo = fi_info* (*)(const fi_info*);
    using FreeInfo = void (*)(fi_info*);
    using Fabric = int (*)(fi_fabric_attr*, fid_fabric**, void*);
    auto get_info = reinterpret_cast<GetInfo>(::dlsym(lib, "fi_getinfo"));
    auto dup_info = reinterpret_cast<DupInfo>(::dlsym(lib, "fi_dupinfo"));
    free_info_ = reinterpret_cast<FreeInfo>(::dlsym(lib, "fi_freeinfo"));
    auto open_fabric = reinterpret_cast<Fabric>(::dlsym(lib, "fi_fabric"));
    fi_info* hints = dup_info(nullptr);
    hints->caps = FI_MSG;
    hints->ep_attr->type = FI_EP_RDM;
    hints->fabric_attr->prov_name = ::strdup("tcp;ofi_rxm");
    int rc = get_info(FI_VERSION(1, 17), "127.0.0.1", "0", FI_SOURCE, hints, &info_);
    free_info_(hints);
    check(rc, "fi_getinfo");
    check(open_fabric(info_->fabric_attr, &fabric_, nullptr), "fi_fabric");
    check(fi_domain(fabric_, info_, &domain_, nullptr), "fi_domain");
    fi_cq_attr cq_attr{};
    cq_attr.format = FI_CQ_FORMAT_CONTEXT;
    check(fi_cq_open(domain_, &cq_attr, &cq_, nullptr), "fi_cq_open");
    fi_av_attr av_attr{};
    av_attr.type = FI_AV_TABLE;
    check(fi_av_open(domain_, &av_attr, &av_, nullptr), "fi_av_open");
    check(fi_endpoint(domain_, info_, &ep_, nullptr), "fi_endpoint");
    check(fi_ep_bind(ep_, &av_->fid, 0), "bind av");
    check(fi_ep_bind(ep_, &cq_->fid, FI_TRANSMIT | FI_RECV), "bind cq");
    check(fi_enable(ep_), "fi_enable");
    name_.resize(64);
    size_t length = name_.size();
    check(fi_getname(&ep_->fid, name_.data(), &length), "fi_getname");
    name_.resize(length);
  }
  ~RawFabricSender() {
    for (fid* f : {ep_ ? &ep_->fid : nullptr, av_ ? &av_->fid : nullptr,
                   cq_ ? &cq_->fid : nullptr, domain_ ? &domain_->fid : nullptr,
                   fabric_ ? &fabric_->fid : nullptr}) {
      if (f != nullptr) fi_close(f);
    }
    if (info_ != nullptr) free_info_(info_);
  }
  RawFabricSender(const RawFabricSender&) = delete;
  RawFabricSender& operator=(const RawFabricSender&) = delete;

  // This endpoint's raw name (a sockaddr_in for tcp).
  const std::string& name() const { return name_; }

  // Sends `bytes` as one libfabric message to the sockaddr "127.0.0.1:<port>" and waits for the
  // send to complete (or fail) locally.
  void send(uint16_t port, const std::string& bytes) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fi_addr_t addr = FI_ADDR_NOTAVAIL;
    if (fi_av_insert(av_, &to, 1, &addr, 0, nullptr) != 1) {
      throw std::runtime_error("fi_av_insert failed");
    }
    ssize_t rc;
    while ((rc = fi_send(ep_, bytes.data(), bytes.size(), nullptr, addr, nullptr)) == -FI_EAGAIN) {
      poll_once();
    }
    check(static_cast<int>(rc), "fi_send");
    ++outstanding_;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (outstanding_ > 0 && std::chrono::steady_clock::now() < deadline) poll_once();
  }

 private:
  void poll_once() {
    fi_cq_entry entry;
    ssize_t n = fi_cq_read(cq_, &entry, 1);
    if (n == 1) {
      --outstanding_;
    } else if (n == -FI_EAVAIL) {
      fi_cq_err_entry error{};
      fi_cq_readerr(cq_, &error, 0);
      --outstanding_;
    } else {
      std::this_thread::yield();
    }
  }
  static void check(int rc, const char* what) {
    if (rc != 0) throw std::runtime_error(std::string(what) + " failed: " + std::to_string(rc));
  }

  using FreeInfo = void (*)(fi_info*);
  FreeInfo free_info_ = nullptr;
  fi_info* info_ = nullptr;
  fid_fabric* fabric_ = nullptr;
  fid_domain* domain_ = nullptr;
  fid_cq* cq_ = nullptr;
  fid_av* av_ = nullptr;
  fid_ep* ep_ = nullptr;
  std::string name_;
  int outstanding_ = 0;
};

}  // namespace dango::net::testing
