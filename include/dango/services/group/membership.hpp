#pragma once
// What a group is made of: its members and the view (ordered list of live members with a
// version), as every member agent, client and group file sees it.
//
// A view is ordered by address and a member's rank is its position in that order, so two
// members holding the same membership agree on every rank without talking. The version is
// computed from the membership records (live members and the tombstones of departed ones), so
// it is the same on every member that holds the same records and grows on every change: a
// client may compare versions fetched from different members.

#include <cstdint>
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "dango/rpc/types.hpp"

namespace dango::group {

// The state of one member as gossiped between agents. A later state replaces an earlier one
// when its incarnation is higher, or equal with a stronger status (alive < suspect < dead, left).
enum class MemberStatus : uint8_t { kAlive = 0, kSuspect = 1, kDead = 2, kLeft = 3 };

// "alive", "suspect", "dead", "left".
std::string_view to_string(MemberStatus status);

// One member of a view.
struct Member {
  std::string address;                         // where its agent listens ("tcp://10.0.0.3:7000")
  rpc::ProviderId provider_id = 0;             // the provider id of its group agent
  uint64_t incarnation = 0;                    // grows when it refutes a suspicion or restarts
  uint64_t rank = 0;                           // position in the view (ordered by address)
  MemberStatus status = MemberStatus::kAlive;  // alive or suspect (a view holds no dead member)

  bool operator==(const Member&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(address, provider_id, incarnation, rank, status);
  }
};

// A view of a group: its members ordered by address, and the version of the membership.
struct Membership {
  std::string name;             // the group's name
  uint64_t version = 0;         // grows on every membership change (see the top of this file)
  std::vector<Member> members;  // ordered by address; members[i].rank == i

  // The member at `address`, or nullptr.
  const Member* find(std::string_view address) const;
  bool contains(std::string_view address) const { return find(address) != nullptr; }
  size_t size() const { return members.size(); }

  // {"name": ..., "version": ..., "members": [{"address", "provider_id", "incarnation"}, ...]};
  // ranks are implied by the order.
  nlohmann::json to_json() const;
  // Parses what to_json() writes; sorts the members and fills their ranks. Throws ConfigError
  // naming the key (prefixed by `path`) on a malformed document.
  static Membership from_json(const nlohmann::json& json, std::string_view path = "");

  // Reads a group file. Throws ConfigError (missing file, bad JSON: the message names the file).
  static Membership load_file(const std::filesystem::path& path);
  // Writes the group file atomically (a temporary file in the same folder, then rename), so a
  // reader never sees it half written. Throws dango::Error naming the file on an I/O error.
  void save_file(const std::filesystem::path& path) const;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, version, members);
  }
};

}  // namespace dango::group
