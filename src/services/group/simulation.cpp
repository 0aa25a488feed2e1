// The simulated network of dango/services/group/simulation.hpp: one event queue ordered by
// virtual time holding message deliveries and member timers. A member's timer entry is pushed
// whenever its next deadline changes; stale entries are recognised and skipped.

#include "dango/services/group/simulation.hpp"

#include <queue>
#include <stdexcept>

namespace dango::group::swim {

struct Simulation::Impl {
  struct Entry {
    Time time{};
    uint64_t order = 0;  // FIFO among equal times: repeatable runs
    size_t member = 0;
    bool is_timer = false;
    Message message;
  };
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const {
      return a.time != b.time ? a.time > b.time : a.order > b.order;
    }
  };

  explicit Impl(const SimulationOptions& o) : options(o), random(o.seed) {}

  void schedule_timer(size_t i) {
    const Time deadline = cores[i]->next_deadline();
    if (deadline == timer_at[i]) return;
    timer_at[i] = deadline;
    queue.push(
        Entry{.time = deadline, .order = order++, .member = i, .is_timer = true, .message = {}});
  }

  SimulationOptions options;
  std::mt19937_64 random;
  std::vector<std::unique_ptr<Core>> cores;
  std::vector<bool> crashed;
  std::vector<bool> dropping;
  std::vector<Time> timer_at;
  std::priority_queue<Entry, std::vector<Entry>, Later> queue;
  uint64_t order = 0;
};

std::string Simulation::address(size_t i) { return "sim://" + std::to_string(i); }

namespace {
size_t index_of(const std::string& address) { return std::stoul(address.substr(6)); }
}  // namespace

Simulation::Simulation(SimulationOptions options) : impl_(std::make_unique<Impl>(options)) {
  options.swim.validate();
  const size_t n = options.members;
  std::vector<Update> everyone;
  for (size_t i = 0; i < n; ++i) everyone.push_back(Update{.address = address(i)});
  for (size_t i = 0; i < n; ++i) {
    impl_->cores.push_back(std::make_unique<Core>(options.swim, "simulation", everyone[i],
                                                  options.seed * 1000003 + i));
    impl_->cores.back()->install(everyone, now_);
  }
  impl_->crashed.assign(n, false);
  impl_->dropping.assign(n, false);
  impl_->timer_at.assign(n, Time::min());
  for (size_t i = 0; i < n; ++i) impl_->schedule_timer(i);
}

Simulation::~Simulation() = default;

size_t Simulation::size() const { return impl_->cores.size(); }
const Core& Simulation::member(size_t i) const { return *impl_->cores.at(i); }
bool Simulation::crashed(size_t i) const { return impl_->crashed.at(i); }
void Simulation::crash(size_t i) { impl_->crashed.at(i) = true; }
void Simulation::set_dropping(size_t i, bool on) { impl_->dropping.at(i) = on; }

void Simulation::process(size_t member, Output& out) {
  Impl& s = *impl_;
  const auto delay_span =
      static_cast<uint64_t>((s.options.max_delay - s.options.min_delay).count());
  for (Outgoing& outgoing : out.messages) {
    ++messages_sent_;
    if (s.dropping[member]) continue;
    if (s.options.loss > 0 &&
        std::uniform_real_distribution<double>(0, 1)(s.random) < s.options.loss) {
      continue;
    }
    const auto delay = s.options.min_delay +
                       std::chrono::microseconds(delay_span ? s.random() % (delay_span + 1) : 0);
    s.queue.push(Impl::Entry{.time = now_ + delay,
                             .order = s.order++,
                             .member = index_of(outgoing.to),
                             .is_timer = false,
                             .message = std::move(outgoing.message)});
  }
  for (Event& event : out.events) {
    observations_.push_back(
        Observation{.time = now_, .observer = member, .event = std::move(event)});
  }
  out.clear();
  s.schedule_timer(member);
}

void Simulation::run_until(Time until) {
  Impl& s = *impl_;
  Output out;
  while (!s.queue.empty() && s.queue.top().time <= until) {
    Impl::Entry entry = std::move(const_cast<Impl::Entry&>(s.queue.top()));
    s.queue.pop();
    const size_t i = entry.member;
    if (i >= s.cores.size() || s.crashed[i]) continue;
    now_ = std::max(now_, entry.time);
    if (entry.is_timer) {
      if (entry.time != s.timer_at[i]) continue;  // superseded by a later schedule
      s.timer_at[i] = Time::min();
      s.cores[i]->tick(now_, out);
    } else {
      if (s.dropping[i]) continue;
      s.cores[i]->on_message(entry.message, now_, out);
    }
    process(i, out);
  }
  now_ = std::max(now_, until);
}

}  // namespace dango::group::swim
