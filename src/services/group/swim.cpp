// The SWIM protocol core (see dango/services/group/swim.hpp). Each protocol period the member
// probes the next member of a shuffled round-robin (SWIM §4.3: bounded time to first detection)
// with a ping; without an ack by ping_timeout it asks `indirect_pings` others to ping it; still
// nothing by the end of the period, it suspects it. A suspicion not refuted (by an alive record
// with a higher incarnation) within suspicion_timeout becomes a death. Updates travel
// piggybacked on pings and acks, each at most multiplier * ceil(log2(n + 1)) times.

#include "dango/services/group/swim.hpp"

#include <algorithm>
#include <bit>

namespace dango::group::swim {
namespace {

int status_rank(MemberStatus status) {
  switch (status) {
    case MemberStatus::kAlive:
      return 0;
    case MemberStatus::kSuspect:
      return 1;
    case MemberStatus::kDead:
    case MemberStatus::kLeft:
      return 2;
  }
  return 0;
}

bool gone(MemberStatus status) { return status_rank(status) == 2; }

Member to_member(const Update& update) {
  return Member{.address = update.address,
                .provider_id = update.provider_id,
                .incarnation = update.incarnation,
                .rank = 0,
                .status = update.status};
}

}  // namespace

bool supersedes(const Update& candidate, const Update& current) {
  if (candidate.incarnation != current.incarnation) {
    return candidate.incarnation > current.incarnation;
  }
  return status_rank(candidate.status) > status_rank(current.status);
}

std::string_view to_string(EventKind kind) {
  switch (kind) {
    case EventKind::kJoin:
      return "join";
    case EventKind::kLeave:
      return "leave";
    case EventKind::kDeath:
      return "death";
  }
  return "?";
}

// The version is the sum of this over every record: an update that supersedes another raises
// it (or keeps it for alive -> suspect, which is no view change), a new member raises it, and
// members holding the same records compute the same sum.
uint64_t Core::weight(const Update& update) {
  return 1 + 2 * update.incarnation + (gone(update.status) ? 1 : 0);
}

Core::Core(SwimOptions options, std::string name, Update self, uint64_t seed)
    : options_(options), name_(std::move(name)), self_(std::move(self)), random_(seed) {
  self_.status = MemberStatus::kAlive;
  version_ = weight(self_);
}

void Core::install(const std::vector<Update>& records, Time now) {
  Output ignored;
  for (const Update& update : records) apply_impl(update, now, ignored, /*events=*/false);
  if (!started_) {
    started_ = true;
    // Members started together would otherwise probe in lock-step.
    const auto period = std::chrono::duration_cast<Time>(options_.period);
    next_period_ =
        now + Time(static_cast<int64_t>(random_() % static_cast<uint64_t>(period.count() + 1)));
  }
}

uint64_t Core::admit(Update joiner, Time now, Output& out) {
  if (joiner.address == self_.address) return self_.incarnation;
  auto it = records_.find(joiner.address);
  if (it != records_.end() && joiner.incarnation <= it->second.state.incarnation &&
      gone(it->second.state.status)) {
    joiner.incarnation = it->second.state.incarnation + 1;  // a new life at the same address
  } else if (it != records_.end() && joiner.incarnation < it->second.state.incarnation) {
    joiner.incarnation = it->second.state.incarnation;
  }
  joiner.status = MemberStatus::kAlive;
  apply_impl(joiner, now, out, true);
  return joiner.incarnation;
}

void Core::adopt_incarnation(uint64_t incarnation) {
  if (incarnation <= self_.incarnation) return;
  version_ -= weight(self_);
  self_.incarnation = incarnation;
  version_ += weight(self_);
}

void Core::apply(const Update& update, Time now, Output& out) {
  apply_impl(update, now, out, true);
}

void Core::apply_about_self(const Update& update) {
  if (left_) return;
  // Suspected or declared dead (or an alive record of an earlier life ahead of ours): refute
  // with a higher incarnation, which supersedes the accusation everywhere it spreads.
  const bool accused =
      update.status != MemberStatus::kAlive && update.incarnation >= self_.incarnation;
  const bool stale_life =
      update.status == MemberStatus::kAlive && update.incarnation > self_.incarnation;
  if (!accused && !stale_life) return;
  version_ -= weight(self_);
  self_.incarnation = update.incarnation + 1;
  version_ += weight(self_);
  queue_gossip(self_);
}

void Core::apply_impl(const Update& update, Time now, Output& out, bool events) {
  if (update.address == self_.address) return apply_about_self(update);
  auto it = records_.find(update.address);
  if (it == records_.end()) {
    Record& record = records_[update.address];
    record.state = update;
    version_ += weight(update);
    if (!gone(update.status)) {
      ++live_count_;
      probe_order_.insert(
          probe_order_.begin() + static_cast<std::ptrdiff_t>(random_() % (probe_order_.size() + 1)),
          update.address);
      if (events) out.events.push_back({EventKind::kJoin, to_member(update)});
      if (update.status == MemberStatus::kSuspect) {
        suspects_[update.address] = now + options_.suspicion_timeout;
      }
    }
    if (events) queue_gossip(update);
    return;
  }
  if (!supersedes(update, it->second.state)) return;
  set_record(it->second, update, now, out, events);
}

void Core::set_record(Record& record, const Update& update, Time now, Output& out, bool events) {
  const Update old = record.state;
  version_ += weight(update) - weight(old);
  record.state = update;
  if (events) queue_gossip(update);
  const bool was_gone = gone(old.status);
  const bool is_gone = gone(update.status);
  if (was_gone && !is_gone) {
    ++live_count_;
    probe_order_.push_back(update.address);
    if (events) out.events.push_back({EventKind::kJoin, to_member(update)});
  } else if (!was_gone && is_gone) {
    --live_count_;  // probe_order_ drops it lazily
    suspects_.erase(update.address);
    if (update.status == MemberStatus::kDead) recent_dead_.emplace_back(now, update.address);
    if (events) {
      const EventKind kind =
          update.status == MemberStatus::kLeft ? EventKind::kLeave : EventKind::kDeath;
      out.events.push_back({kind, to_member(update)});
    }
  } else if (was_gone && is_gone && events && old.incarnation < update.incarnation) {
    // A life we never saw began and ended meanwhile: nothing to report.
  }
  if (update.status == MemberStatus::kSuspect) {
    suspects_[update.address] = now + options_.suspicion_timeout;
  } else if (update.status == MemberStatus::kAlive) {
    suspects_.erase(update.address);
  }
}

void Core::queue_gossip(const Update& update) {
  for (Gossip& gossip : gossip_) {
    if (gossip.update.address == update.address) {
      gossip = {update, 0};
      return;
    }
  }
  gossip_.push_back({update, 0});
}

uint32_t Core::retransmit_limit() const {
  const uint32_t log = std::bit_width(live_count_ + 1);  // ceil(log2(n + 1)), within one
  return options_.retransmit_multiplier * std::max<uint32_t>(1, log);
}

void Core::piggyback(Message& message) {
  if (gossip_.empty()) return;
  const size_t count = std::min<size_t>(gossip_.size(), options_.max_piggyback);
  if (count < gossip_.size()) {
    // The least transmitted first: a fresh update is not starved by older ones.
    std::nth_element(gossip_.begin(), gossip_.begin() + static_cast<std::ptrdiff_t>(count),
                     gossip_.end(),
                     [](const Gossip& a, const Gossip& b) { return a.transmits < b.transmits; });
  }
  const uint32_t limit = retransmit_limit();
  for (size_t i = 0; i < count; ++i) {
    message.updates.push_back(gossip_[i].update);
    ++gossip_[i].transmits;
  }
  std::erase_if(gossip_, [limit](const Gossip& g) { return g.transmits >= limit; });
}

void Core::send(Output& out, const Update& to, MessageKind kind, uint64_t seq, std::string target) {
  Outgoing outgoing{.to = to.address, .provider_id = to.provider_id, .message = {}};
  Message& message = outgoing.message;
  message.kind = kind;
  message.seq = seq;
  message.sender = self_;
  message.target = std::move(target);
  // A recipient we suspect (or hold dead) hears it first-hand, so it can refute even when the
  // gossip about it has run out of transmissions.
  if (auto it = records_.find(outgoing.to);
      it != records_.end() && it->second.state.status != MemberStatus::kAlive) {
    message.updates.push_back(it->second.state);
  }
  piggyback(message);
  ++messages_sent_;
  out.messages.push_back(std::move(outgoing));
}

bool Core::is_live(const std::string& address) const {
  auto it = records_.find(address);
  return it != records_.end() && !gone(it->second.state.status);
}

void Core::on_message(const Message& message, Time now, Output& out) {
  if (left_) return;
  Update sender = message.sender;
  if (sender.status != MemberStatus::kAlive) sender.status = MemberStatus::kAlive;
  apply_impl(sender, now, out, true);
  for (const Update& update : message.updates) apply_impl(update, now, out, true);

  switch (message.kind) {
    case MessageKind::kPing:
      send(out, sender, MessageKind::kAck, message.seq, {});
      break;
    case MessageKind::kAck: {
      if (probe_ && probe_->seq == message.seq) {
        probe_->acked = true;
      } else if (auto relay = relays_.find(message.seq); relay != relays_.end()) {
        const Update requester{.address = relay->second.requester,
                               .provider_id = relay->second.requester_provider};
        send(out, requester, MessageKind::kAck, relay->second.requester_seq,
             message.sender.address);
        relays_.erase(relay);
      }
      break;
    }
    case MessageKind::kPingReq: {
      auto target = records_.find(message.target);
      if (target == records_.end()) break;
      const uint64_t seq = next_seq_++;
      relays_[seq] = Relay{.requester = sender.address,
                           .requester_provider = sender.provider_id,
                           .requester_seq = message.seq,
                           .expires = now + options_.period};
      send(out, target->second.state, MessageKind::kPing, seq, {});
      break;
    }
  }
}

void Core::finish_probe(Time now, Output& out) {
  if (!probe_) return;
  auto it = records_.find(probe_->target);
  if (!probe_->acked && it != records_.end() && it->second.state.status == MemberStatus::kAlive) {
    Update suspicion = it->second.state;
    suspicion.status = MemberStatus::kSuspect;
    set_record(it->second, suspicion, now, out, true);
  }
  probe_.reset();
}

void Core::start_probe(Time now, Output& out) {
  // Randomised round-robin: every live member is probed once per pass over the shuffled list.
  for (size_t tries = 0; tries <= probe_order_.size(); ++tries) {
    if (probe_index_ >= probe_order_.size()) {
      std::erase_if(probe_order_, [this](const std::string& a) { return !is_live(a); });
      std::shuffle(probe_order_.begin(), probe_order_.end(), random_);
      probe_index_ = 0;
      if (probe_order_.empty()) return;
    }
    const std::string& address = probe_order_[probe_index_++];
    auto it = records_.find(address);
    if (it == records_.end() || gone(it->second.state.status)) continue;
    probe_ = Probe{.target = address, .seq = next_seq_++, .started = now};
    send(out, it->second.state, MessageKind::kPing, probe_->seq, {});
    return;
  }
}

void Core::send_indirect(Output& out) {
  probe_->indirect_sent = true;
  std::vector<const Update*> helpers;
  if (probe_order_.size() <= 1) return;
  // Random distinct live members other than the target; a few draws over k suffice.
  for (size_t draw = 0;
       draw < 4 * options_.indirect_pings && helpers.size() < options_.indirect_pings; ++draw) {
    const std::string& address = probe_order_[random_() % probe_order_.size()];
    if (address == probe_->target) continue;
    auto it = records_.find(address);
    if (it == records_.end() || it->second.state.status != MemberStatus::kAlive) continue;
    if (std::find(helpers.begin(), helpers.end(), &it->second.state) != helpers.end()) continue;
    helpers.push_back(&it->second.state);
  }
  for (const Update* helper : helpers) {
    send(out, *helper, MessageKind::kPingReq, probe_->seq, probe_->target);
  }
}

// Every kDeadProbeEvery periods (every period when no member is left alive in this member's
// view), one member declared dead in the last kDeadProbeWindow periods is pinged. A crashed one
// costs a lost message; a live one learns of its death from the ping and refutes, and its ack's
// higher incarnation brings it back.
void Core::probe_the_dead(Time now, Output& out) {
  constexpr uint64_t kDeadProbeEvery = 8;
  constexpr int64_t kDeadProbeWindow = 64;
  ++periods_;
  const bool alone = live_count_ <= 1;
  if (!alone) {
    const Time oldest = now - options_.period * kDeadProbeWindow;
    std::erase_if(recent_dead_, [&](const auto& entry) { return entry.first < oldest; });
  }
  std::erase_if(recent_dead_, [this](const auto& entry) {
    auto it = records_.find(entry.second);
    return it == records_.end() || it->second.state.status != MemberStatus::kDead;
  });
  if (recent_dead_.empty() || (!alone && periods_ % kDeadProbeEvery != 0)) return;
  const std::string& address = recent_dead_[random_() % recent_dead_.size()].second;
  send(out, records_.at(address).state, MessageKind::kPing, next_seq_++, {});
}

void Core::expire_suspicions(Time now, Output& out) {
  std::vector<std::string> expired;
  for (const auto& [address, deadline] : suspects_) {
    if (deadline <= now) expired.push_back(address);
  }
  for (const std::string& address : expired) {
    Record& record = records_.at(address);
    Update death = record.state;
    death.status = MemberStatus::kDead;
    set_record(record, death, now, out, true);
  }
}

void Core::tick(Time now, Output& out) {
  if (left_) return;
  if (!started_) install({}, now);
  if (now >= next_period_) {
    finish_probe(now, out);
    const auto period = std::chrono::duration_cast<Time>(options_.period);
    next_period_ += period;
    if (next_period_ <= now) next_period_ = now + period;  // after a stall: no burst of probes
    start_probe(now, out);
    probe_the_dead(now, out);
  }
  if (probe_ && !probe_->acked && !probe_->indirect_sent &&
      now >= probe_->started + options_.ping_timeout) {
    send_indirect(out);
  }
  expire_suspicions(now, out);
  std::erase_if(relays_, [now](const auto& entry) { return entry.second.expires <= now; });
}

Time Core::next_deadline() const {
  Time next = next_period_;
  if (probe_ && !probe_->acked && !probe_->indirect_sent) {
    next = std::min(next, probe_->started + Time(options_.ping_timeout));
  }
  for (const auto& [address, deadline] : suspects_) next = std::min(next, deadline);
  return next;
}

std::vector<Update> Core::leave(Output& out) {
  (void)out;
  std::vector<Update> live;
  if (left_) return live;
  for (const auto& [address, record] : records_) {
    if (!gone(record.state.status)) live.push_back(record.state);
  }
  version_ -= weight(self_);
  self_.status = MemberStatus::kLeft;
  version_ += weight(self_);
  left_ = true;
  probe_.reset();
  return live;
}

std::vector<Update> Core::records() const {
  std::vector<Update> all;
  all.reserve(records_.size() + 1);
  all.push_back(self_);
  for (const auto& [address, record] : records_) all.push_back(record.state);
  return all;
}

Membership Core::view() const {
  Membership view{.name = name_, .version = version_, .members = {}};
  view.members.reserve(live_count_);
  if (!left_) view.members.push_back(to_member(self_));
  for (const auto& [address, record] : records_) {
    if (!gone(record.state.status)) view.members.push_back(to_member(record.state));
  }
  std::sort(view.members.begin(), view.members.end(),
            [](const Member& a, const Member& b) { return a.address < b.address; });
  for (size_t i = 0; i < view.members.size(); ++i) view.members[i].rank = i;
  return view;
}

std::optional<Update> Core::record(const std::string& address) const {
  if (address == self_.address) return self_;
  auto it = records_.find(address);
  if (it == records_.end()) return std::nullopt;
  return it->second.state;
}

}  // namespace dango::group::swim
