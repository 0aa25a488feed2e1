#pragma once
// The group RPCs between member agents and clients: names and the types they carry.

#include <cstdint>
#include <string>
#include <vector>

#include "dango/services/group/swim.hpp"

namespace dango::group::detail {

// One-way SWIM message (swim::Message) between agents.
inline constexpr const char* kSwimRpc = "group_swim";
// JoinReply(group name, joiner's record): a contact admits a new member.
inline constexpr const char* kJoinRpc = "group_join";
// void(leaving member's record): a voluntary leave, told to every member directly.
inline constexpr const char* kLeaveRpc = "group_leave";
// Membership(): the current view.
inline constexpr const char* kViewRpc = "group_view";
// Membership(known version, timeout ms): the view once its version differs, or at the timeout.
inline constexpr const char* kWatchRpc = "group_watch";
inline constexpr const char* kAllRpcs[] = {kSwimRpc, kJoinRpc, kLeaveRpc, kViewRpc, kWatchRpc};

struct JoinReply {
  std::string refused;                // why the contact refuses (another group); empty: admitted
  uint64_t incarnation = 0;           // the joiner takes this incarnation
  std::vector<swim::Update> records;  // the contact's whole membership, tombstones included

  template <class Archive>
  void serialize(Archive& ar) {
    ar(refused, incarnation, records);
  }
};

}  // namespace dango::group::detail
