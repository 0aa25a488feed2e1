#pragma once
// The SWIM protocol core: failure detection (direct ping, indirect ping through k members,
// suspicion, refutation by incarnation) and membership dissemination piggybacked on the
// protocol messages. It does no I/O and reads no clock: time and received messages are its
// inputs, messages to send and membership events its outputs. The member agent drives it with
// the RPC engine and the steady clock; `dango-bench group` and the tests drive the same code
// with a simulated network and a virtual clock.
//
// Not thread-safe: the caller serialises calls (the agent holds a mutex).

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "dango/services/group/membership.hpp"
#include "dango/services/group/options.hpp"

namespace dango::group::swim {

// A point in time, as a duration since an epoch the caller chooses (steady clock or virtual).
using Time = std::chrono::nanoseconds;

// One member's state, as gossiped.
struct Update {
  std::string address;
  rpc::ProviderId provider_id = 0;
  uint64_t incarnation = 0;
  MemberStatus status = MemberStatus::kAlive;

  bool operator==(const Update&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(address, provider_id, incarnation, status);
  }
};

// True when `candidate` replaces `current` (same member): a higher incarnation, or the same one
// with a stronger status (alive < suspect < dead = left).
bool supersedes(const Update& candidate, const Update& current);

enum class MessageKind : uint8_t {
  kPing = 0,     // "are you alive?"; answered by kAck with the same seq
  kAck = 1,      // answer to kPing (or relayed answer to kPingReq)
  kPingReq = 2,  // "ping `target` for me"; the helper relays target's ack with this seq
};

// A protocol message. Every message carries its sender's own record (so a refutation or a
// rejoin spreads with every message the member sends) and piggybacked updates.
struct Message {
  MessageKind kind = MessageKind::kPing;
  uint64_t seq = 0;
  Update sender;
  std::string target;  // kPingReq: the member to probe
  std::vector<Update> updates;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(kind, seq, sender, target, updates);
  }
};

// A message the caller must send.
struct Outgoing {
  std::string to;
  rpc::ProviderId provider_id = 0;
  Message message;
};

enum class EventKind : uint8_t { kJoin, kLeave, kDeath };
// "join", "leave", "death".
std::string_view to_string(EventKind kind);

// A membership change seen by this member (observers are called with it). Each is reported once
// per incarnation of the member: a member that dies and rejoins gives death, then join.
struct Event {
  EventKind kind = EventKind::kJoin;
  Member member;  // rank is left 0 (ranks belong to a view)
};

// What one call produced. The caller clears it (or not) between calls.
struct Output {
  std::vector<Outgoing> messages;
  std::vector<Event> events;
  void clear() {
    messages.clear();
    events.clear();
  }
};

class Core {
 public:
  // A member `self` (status alive) of group `name`; `seed` drives its random choices.
  Core(SwimOptions options, std::string name, Update self, uint64_t seed);

  // Adds known records without raising events (a static view, a join reply). The time starts
  // the protocol's clock: the first probe is at `now` + a random fraction of a period.
  void install(const std::vector<Update>& records, Time now);
  // A member asks to join through this one: records it alive and returns the incarnation it
  // must take (above any record of an earlier life at the same address).
  uint64_t admit(Update joiner, Time now, Output& out);
  // Takes `incarnation` when it is above this member's (the one a join reply assigns).
  void adopt_incarnation(uint64_t incarnation);
  // Applies a gossiped update (also used for the direct leave notice).
  void apply(const Update& update, Time now, Output& out);
  // Handles a received protocol message.
  void on_message(const Message& message, Time now, Output& out);
  // Advances the timers to `now`: period boundary (verdict on the last probe, next probe),
  // ping timeout (indirect probes), suspicion timeouts (deaths). Call it at next_deadline().
  void tick(Time now, Output& out);
  // When tick() has something to do next.
  Time next_deadline() const;
  // Marks this member as leaving: stops probing and returns the live members to notify.
  std::vector<Update> leave(Output& out);

  // Every record, tombstones included (what a joiner receives).
  std::vector<Update> records() const;
  // The current view (alive and suspect members, ordered by address) and its version.
  Membership view() const;
  uint64_t version() const { return version_; }
  const Update& self() const { return self_; }
  bool has_left() const { return left_; }
  // The status of `address` as this member knows it (nullopt: never heard of).
  std::optional<Update> record(const std::string& address) const;
  // Members in the view (alive or suspect), this one included.
  size_t live_count() const { return live_count_; }
  // Protocol messages produced since construction (for the message-load figures).
  uint64_t messages_sent() const { return messages_sent_; }
  const SwimOptions& options() const { return options_; }

 private:
  struct Record {
    Update state;
  };
  struct Probe {
    std::string target;
    uint64_t seq = 0;
    Time started{};
    bool acked = false;
    bool indirect_sent = false;
  };
  struct Relay {
    std::string requester;
    rpc::ProviderId requester_provider = 0;
    uint64_t requester_seq = 0;
    Time expires{};
  };
  struct Gossip {
    Update update;
    uint32_t transmits = 0;
  };

  void set_record(Record& record, const Update& update, Time now, Output& out, bool events);
  void apply_about_self(const Update& update);
  void apply_impl(const Update& update, Time now, Output& out, bool events);
  void queue_gossip(const Update& update);
  void piggyback(Message& message);
  uint32_t retransmit_limit() const;
  void send(Output& out, const Update& to, MessageKind kind, uint64_t seq, std::string target);
  void finish_probe(Time now, Output& out);
  void start_probe(Time now, Output& out);
  void send_indirect(Output& out);
  void expire_suspicions(Time now, Output& out);
  void probe_the_dead(Time now, Output& out);
  bool is_live(const std::string& address) const;
  static uint64_t weight(const Update& update);

  SwimOptions options_;
  std::string name_;
  Update self_;
  bool left_ = false;
  std::mt19937_64 random_;
  std::unordered_map<std::string, Record> records_;  // every other member ever heard of
  std::vector<std::string> probe_order_;             // shuffled round-robin over live members
  size_t probe_index_ = 0;
  std::unordered_map<std::string, Time> suspects_;  // address -> suspicion deadline
  // Members this one declared dead, with when: pinged now and then (the ping carries the death
  // record), so that one declared dead by mistake (a partition, a long stall) refutes and rejoins.
  std::vector<std::pair<Time, std::string>> recent_dead_;
  uint64_t periods_ = 0;
  std::vector<Gossip> gossip_;  // at most one update per member
  std::optional<Probe> probe_;
  std::unordered_map<uint64_t, Relay> relays_;  // our ping seq -> who asked
  uint64_t next_seq_ = 1;
  Time next_period_{};
  bool started_ = false;
  uint64_t version_ = 0;
  size_t live_count_ = 1;
  uint64_t messages_sent_ = 0;
};

}  // namespace dango::group::swim
