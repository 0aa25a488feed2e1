// The group member agent (see dango/services/group/provider.hpp). The SWIM core holds the
// membership; this file connects it to the RPC engine (one-way "group_swim" messages), the
// steady clock (a protocol ULT sleeping until the core's next deadline), the bootstrap methods,
// observers, client view requests and the group file.

#include "dango/services/group/provider.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>

#include "bootstrap.hpp"
#include "dango/common/log.hpp"
#include "dango/thread/thread.hpp"
#include "file_lock.hpp"
#include "protocol.hpp"
#include "spdlog/spdlog.h"

namespace dango::group {
namespace {

using Clock = std::chrono::steady_clock;

std::shared_ptr<spdlog::logger> logger() { return log::get("group"); }

swim::Time now() { return std::chrono::duration_cast<swim::Time>(Clock::now().time_since_epoch()); }

Clock::time_point to_clock(swim::Time time) {
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(time));
}

// The longest a client's watch request waits in a handler.
constexpr std::chrono::milliseconds kMaxWatch{60000};

}  // namespace

struct Provider::State final : detail::BootstrapContext {
  State(rpc::Engine& engine, GroupOptions group_options, Member self_member)
      : engine(engine),
        options_(std::move(group_options)),
        core(options_.swim, options_.name,
             swim::Update{.address = self_member.address,
                          .provider_id = self_member.provider_id,
                          .incarnation = 0,
                          .status = MemberStatus::kAlive},
             std::random_device{}()),
        swim_rpc(engine.rpc<void(swim::Message)>(detail::kSwimRpc)),
        join_rpc(engine.rpc<detail::JoinReply(std::string, swim::Update)>(detail::kJoinRpc)),
        leave_rpc(engine.rpc<void(swim::Update)>(detail::kLeaveRpc)) {}

  // --- BootstrapContext ---
  const GroupOptions& options() const override { return options_; }
  Member self() const override {
    std::lock_guard lock(mutex);
    const swim::Update& s = core.self();
    return Member{.address = s.address, .provider_id = s.provider_id, .incarnation = s.incarnation};
  }
  void create(const std::vector<Member>& members) override {
    std::vector<swim::Update> records;
    for (const Member& m : members) {
      records.push_back({.address = m.address,
                         .provider_id = m.provider_id,
                         .incarnation = m.incarnation,
                         .status = MemberStatus::kAlive});
    }
    std::lock_guard lock(mutex);
    core.install(records, now());
  }
  bool join_through(const std::vector<Member>& contacts, std::chrono::milliseconds budget) override;
  Membership view() const override {
    std::lock_guard lock(mutex);
    return core.view();
  }

  // Runs `step` on the core under the lock, then sends what it produced and reports the events.
  template <class Step>
  void run(Step step) {
    swim::Output out;
    bool changed = false;
    {
      std::lock_guard lock(mutex);
      const uint64_t before = core.version();
      step(out);
      changed = core.version() != before;
    }
    dispatch(out);
    if (changed) {
      changed_.notify_all();
      wake_.notify_all();
    }
  }
  void dispatch(swim::Output& out);
  void protocol_loop();
  void publish_file();
  detail::JoinReply on_join(const std::string& group, const swim::Update& joiner);
  Membership on_watch(uint64_t known_version, uint32_t timeout_ms);
  void leave();

  rpc::Engine& engine;
  GroupOptions options_;
  mutable thread::Mutex mutex;
  thread::ConditionVariable changed_;  // version changed, or stopping (watchers)
  thread::ConditionVariable wake_;     // the protocol ULT's sleep
  swim::Core core;
  bool stopping = false;
  uint64_t published_version = 0;
  thread::Ult loop;
  std::atomic<int> active_handlers{0};

  std::mutex observers_mutex;
  std::map<uint64_t, Observer> observers;
  uint64_t next_observer = 1;

  rpc::RemoteProcedure<void(swim::Message)> swim_rpc;
  rpc::RemoteProcedure<detail::JoinReply(std::string, swim::Update)> join_rpc;
  rpc::RemoteProcedure<void(swim::Update)> leave_rpc;
};

namespace {
// Counts a running handler, so that the provider's destructor waits for it.
class HandlerScope {
 public:
  explicit HandlerScope(std::atomic<int>& count) : count_(count) { ++count_; }
  ~HandlerScope() { --count_; }
  HandlerScope(const HandlerScope&) = delete;
  HandlerScope& operator=(const HandlerScope&) = delete;

 private:
  std::atomic<int>& count_;
};
}  // namespace

void Provider::State::dispatch(swim::Output& out) {
  for (swim::Outgoing& outgoing : out.messages) {
    try {
      swim_rpc.on(engine.lookup(outgoing.to)).with(outgoing.provider_id).notify(outgoing.message);
    } catch (const Error& e) {
      // An unreachable member is what the protocol detects; the lost message is its evidence.
      logger()->debug("group {}: message to {} not sent: {}", options_.name, outgoing.to, e.what());
    }
  }
  if (out.events.empty()) return;
  std::vector<Observer> current;
  {
    std::lock_guard lock(observers_mutex);
    for (const auto& [id, observer] : observers) current.push_back(observer);
  }
  for (const swim::Event& event : out.events) {
    logger()->info("group {}: {} {} (incarnation {})", options_.name, swim::to_string(event.kind),
                   event.member.address, event.member.incarnation);
    for (const Observer& observer : current) {
      try {
        observer(event);
      } catch (const std::exception& e) {
        logger()->error("group {}: an observer threw: {}", options_.name, e.what());
      }
    }
  }
}

bool Provider::State::join_through(const std::vector<Member>& contacts,
                                   std::chrono::milliseconds budget) {
  std::vector<Member> order = contacts;
  std::shuffle(order.begin(), order.end(), std::mt19937_64{std::random_device{}()});
  const auto deadline = Clock::now() + budget;
  for (;;) {
    for (const Member& contact : order) {
      const Member me = self();
      const swim::Update request{.address = me.address,
                                 .provider_id = me.provider_id,
                                 .incarnation = me.incarnation,
                                 .status = MemberStatus::kAlive};
      try {
        const detail::JoinReply reply = join_rpc.on(engine.lookup(contact.address))
                                            .with(contact.provider_id)
                                            .timeout(options_.swim.period)(options_.name, request);
        if (!reply.refused.empty()) {
          throw ConfigError("group \"" + options_.name + "\": cannot join through " +
                            contact.address + ": " + reply.refused);
        }
        run([&](swim::Output&) {
          core.adopt_incarnation(reply.incarnation);
          core.install(reply.records, now());
        });
        logger()->info("group {}: joined through {} (incarnation {})", options_.name,
                       contact.address, reply.incarnation);
        return true;
      } catch (const RemoteError& e) {
        logger()->warn("group {}: {} refused the join: {}", options_.name, contact.address,
                       e.what());
      } catch (const ShutdownError&) {
        throw;
      } catch (const ConfigError&) {
        throw;  // a member of another group: retrying cannot help
      } catch (const Error& e) {
        logger()->debug("group {}: {} did not answer the join: {}", options_.name, contact.address,
                        e.what());
      }
    }
    if (Clock::now() >= deadline) return false;
    thread::this_ult::sleep_for(std::chrono::milliseconds(50));
  }
}

detail::JoinReply Provider::State::on_join(const std::string& group, const swim::Update& joiner) {
  detail::JoinReply reply;
  if (group != options_.name) {
    reply.refused = core.self().address + " is a member of group \"" + options_.name +
                    "\", not \"" + group + "\"";
    return reply;
  }
  run([&](swim::Output& out) {
    if (core.has_left())
      throw Error("group_join: " + core.self().address + " has left group \"" + group + "\"");
    reply.incarnation = core.admit(joiner, now(), out);
    reply.records = core.records();
  });
  return reply;
}

Membership Provider::State::on_watch(uint64_t known_version, uint32_t timeout_ms) {
  const auto limit = std::min(std::chrono::milliseconds(timeout_ms), kMaxWatch);
  std::unique_lock lock(mutex);
  changed_.wait_until(mutex, Clock::now() + limit,
                      [&] { return stopping || core.version() != known_version; });
  return core.view();
}

void Provider::State::protocol_loop() {
  for (;;) {
    swim::Output out;
    {
      std::unique_lock lock(mutex);
      if (stopping) return;
      const auto deadline = to_clock(core.next_deadline());
      wake_.wait_until(mutex, deadline);
      if (stopping) return;
    }
    run([&](swim::Output& out_) { core.tick(now(), out_); });
    if (!options_.file.empty()) publish_file();
  }
}

// The member of rank 0 keeps the group file current; a write that fails (lock held too long,
// full disk) is retried at the next protocol step.
void Provider::State::publish_file() {
  const Membership current = view();
  if (current.members.empty() || current.members.front().address != self().address ||
      current.version <= published_version) {
    return;
  }
  try {
    detail::publish_if_newer(options_.file, current, options_.swim.ping_timeout);
    published_version = current.version;
  } catch (const Error& e) {
    // Usually the lock held by joining members for a moment; the next step retries.
    logger()->info("group {}: group file not rewritten yet: {}", options_.name, e.what());
  }
}

void Provider::State::leave() {
  std::vector<swim::Update> live;
  swim::Update me;
  {
    std::lock_guard lock(mutex);
    if (core.has_left()) return;
    swim::Output ignored;
    live = core.leave(ignored);
    me = core.self();
  }
  changed_.notify_all();
  wake_.notify_all();
  std::vector<rpc::Pending<void>> pending;
  for (const swim::Update& member : live) {
    try {
      pending.push_back(leave_rpc.on(engine.lookup(member.address))
                            .with(member.provider_id)
                            .timeout(options_.swim.ping_timeout)
                            .async(me));
    } catch (const Error& e) {
      logger()->debug("group {}: leave notice to {} not sent: {}", options_.name, member.address,
                      e.what());
    }
  }
  for (auto& call : pending) {
    try {
      call.wait();
    } catch (const Error& e) {
      logger()->debug("group {}: leave notice lost: {}", options_.name, e.what());
    }
  }
  logger()->info("group {}: {} left", options_.name, me.address);
}

Provider::Provider(rpc::Engine& engine, GroupOptions options, Observer observer, thread::Pool pool)
    : rpc::Provider(engine, options.provider_id, pool) {
  options.validate();
  const Member self{.address = engine.address(), .provider_id = options.provider_id};
  state_ = std::make_unique<State>(engine, std::move(options), self);
  State* s = state_.get();
  if (observer) add_observer(std::move(observer));
  define(detail::kSwimRpc, [s](const swim::Message& message) {
    const HandlerScope scope(s->active_handlers);
    s->run([&](swim::Output& out) { s->core.on_message(message, now(), out); });
  });
  define(detail::kJoinRpc, [s](const std::string& group, const swim::Update& joiner) {
    const HandlerScope scope(s->active_handlers);
    return s->on_join(group, joiner);
  });
  define(detail::kLeaveRpc, [s](const swim::Update& leaving) {
    const HandlerScope scope(s->active_handlers);
    swim::Update update = leaving;
    update.status = MemberStatus::kLeft;
    s->run([&](swim::Output& out) { s->core.apply(update, now(), out); });
  });
  define(detail::kViewRpc, [s]() {
    const HandlerScope scope(s->active_handlers);
    return s->view();
  });
  define(detail::kWatchRpc, [s](uint64_t known_version, uint32_t timeout_ms) {
    const HandlerScope scope(s->active_handlers);
    return s->on_watch(known_version, timeout_ms);
  });
  const detail::BootstrapMethod* method = detail::find_bootstrap(s->options_.bootstrap);
  try {
    this->pool()
        .spawn([s, method] {
          method->run(*s);
          if (!s->options_.file.empty()) s->publish_file();
        })
        .join();
  } catch (...) {
    // No handler may run on the state once the constructor has failed.
    for (const char* name : detail::kAllRpcs) engine.deregister(name, provider_id());
    while (s->active_handlers.load() > 0) thread::this_ult::sleep_for(std::chrono::milliseconds(1));
    throw;
  }
  s->loop = this->pool().spawn([s] { s->protocol_loop(); });
}

Provider::~Provider() {
  try {
    if (!engine().finalized()) state_->leave();
  } catch (const std::exception& e) {
    logger()->warn("group {}: leaving on destruction failed: {}", state_->options_.name, e.what());
  }
  for (const char* name : detail::kAllRpcs) engine().deregister(name, provider_id());
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
  }
  state_->changed_.notify_all();
  state_->wake_.notify_all();
  try {
    if (state_->loop.joinable()) state_->loop.join();
    while (state_->active_handlers.load() > 0)
      thread::this_ult::sleep_for(std::chrono::milliseconds(1));
  } catch (const std::exception& e) {
    logger()->debug("group {}: stopping: {}", state_->options_.name, e.what());
  }
}

Membership Provider::view() const { return state_->view(); }

uint64_t Provider::version() const {
  std::lock_guard lock(state_->mutex);
  return state_->core.version();
}

Member Provider::self() const { return state_->self(); }

uint64_t Provider::add_observer(Observer observer) {
  std::lock_guard lock(state_->observers_mutex);
  const uint64_t id = state_->next_observer++;
  state_->observers.emplace(id, std::move(observer));
  return id;
}

void Provider::remove_observer(uint64_t id) {
  std::lock_guard lock(state_->observers_mutex);
  state_->observers.erase(id);
}

void Provider::leave() { state_->leave(); }

const GroupOptions& Provider::options() const { return state_->options_; }

nlohmann::json Provider::config() const {
  nlohmann::json json = state_->options_.to_json();
  json["address"] = engine().address();
  return json;
}

}  // namespace dango::group
