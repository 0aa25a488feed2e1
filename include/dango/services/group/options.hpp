#pragma once
// Options of a group member agent: which group, how it starts (bootstrap method) and how it
// detects failures (SWIM). JSON (the "group" object of a process description):
//
//   {"name": "store", "bootstrap": "file", "file": "/shared/store.group", "provider_id": 0,
//    "swim": {"period_ms": 1000, "ping_timeout_ms": 400, "indirect_pings": 3,
//             "suspicion_timeout_ms": 6000, "retransmit_multiplier": 4, "max_piggyback": 16}}

#include <chrono>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "dango/rpc/types.hpp"

namespace dango::group {

// SWIM failure detection. The defaults suit a loaded HPC node: a member whose process is
// descheduled for a few hundred milliseconds, or whose node is saturated, is not declared dead;
// a crashed member is declared dead by everyone within ~10 s in groups of 16 to 1,024 members.
struct SwimOptions {
  // Each period a member probes one other member (default 1 s; JSON "period_ms"). Shorter
  // detects sooner and costs proportionally more messages.
  std::chrono::milliseconds period{1000};
  // Time a direct ping waits for its ack before `indirect_pings` others are asked to probe the
  // same member (default 400 ms; JSON "ping_timeout_ms"). Must be below `period`: the indirect
  // probes have until the end of the period.
  std::chrono::milliseconds ping_timeout{400};
  // Members asked to probe an unresponsive member indirectly, the `k` of SWIM (default 3; JSON
  // "indirect_pings"). More tolerates more message loss on the paths to the suspect.
  uint32_t indirect_pings = 3;
  // A suspected member that has not refuted by then is declared dead (default 6 s; JSON
  // "suspicion_timeout_ms"). The main guard against false deaths on a busy machine; it is the
  // bulk of the detection time.
  std::chrono::milliseconds suspicion_timeout{6000};
  // Each membership update is piggybacked on at most multiplier * ceil(log2(n + 1)) messages
  // (default 4; JSON "retransmit_multiplier"): enough for it to reach all n members w.h.p.
  uint32_t retransmit_multiplier = 4;
  // Most updates carried by one protocol message (default 16; JSON "max_piggyback"); bounds the
  // message size when many members change at once.
  uint32_t max_piggyback = 16;

  // Reads the "swim" object; errors name the key.
  static SwimOptions from_json(const nlohmann::json& json, std::string_view path = "swim");
  nlohmann::json to_json() const;
  // Throws ConfigError naming the option when values contradict (ping timeout >= period, ...).
  void validate(std::string_view path = "swim") const;
};

// A member agent's options.
struct GroupOptions {
  // The group's name; members of one group must agree on it (required in JSON).
  std::string name{};
  // How the member finds the group (default "file"; JSON "bootstrap"): "self" (a group of one),
  // "view" (the static list `view`), "file" (create or join through the group file `file`),
  // "join" (contact the member at `join`), and, when dango was built with MPI / PMIx, "mpi"
  // (the ranks of MPI_COMM_WORLD) and "pmix" (the ranks of the PMIx job, e.g. under mpirun or
  // srun --mpi=pmix). The list comes from the bootstrap registry.
  std::string bootstrap = "file";
  // The group file (JSON, see Membership::to_json): created by the first member, used by the
  // others to join, kept current by the member of rank 0 and read by clients. Required by the
  // "file" bootstrap; with another bootstrap, written too when set (default: none).
  std::string file{};
  // Addresses of the members of a static group ("view" bootstrap); must contain this member.
  std::vector<std::string> view{};
  // Address of a member to join through ("join" bootstrap).
  std::string join{};
  // Provider id of the group agent, the same in every member (default 0; JSON "provider_id").
  rpc::ProviderId provider_id = 0;
  // How long a bootstrap keeps trying to reach a contact before it gives up (default 10 s;
  // JSON "join_timeout_ms").
  std::chrono::milliseconds join_timeout{10000};
  SwimOptions swim{};

  // Reads the "group" object; unknown keys, wrong types and an unknown bootstrap are
  // ConfigError naming the key ("group.bootstrap: unknown bootstrap \"x\" ...").
  static GroupOptions from_json(const nlohmann::json& json, std::string_view path = "group");
  // The effective configuration, defaults filled in.
  nlohmann::json to_json() const;
  // Checks what the bootstrap needs and the SWIM options; throws ConfigError naming the key.
  void validate(std::string_view path = "group") const;
};

}  // namespace dango::group
