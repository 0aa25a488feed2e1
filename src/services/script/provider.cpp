// script::Provider: the interpreters of one provider and the RPCs that run scripts in them (see
// include/dango/services/script/provider.hpp). Each interpreter lives on its own
// thread::WorkerThread: made, run and destroyed there, so a language runtime with per-thread
// state (CPython's) always sees the same thread, scripts of one interpreter run one at a time in
// arrival order, and a handler waits as a ULT while the stream serves other requests.

#include "dango/services/script/provider.hpp"

#include <chrono>
#include <map>
#include <set>
#include <shared_mutex>
#include <string>
#include <type_traits>

#include "dango/common/config.hpp"
#include "services/common/guarded.hpp"
#include "dango/thread/worker_thread.hpp"
#include "services/script/backend.hpp"
#include "services/script/protocol.hpp"

namespace dango::script {

using services::guarded;

namespace {

// One interpreter: its configuration, its thread, and its backend (made and destroyed there).
class Hosted {
 public:
  explicit Hosted(InterpreterConfig config) : config_(std::move(config)) {
    backend_ = run([this] { return make_backend(config_); });
  }
  ~Hosted() {
    worker_.run([this] { backend_.reset(); });
  }
  Hosted(const Hosted&) = delete;
  Hosted& operator=(const Hosted&) = delete;

  const InterpreterConfig& config() const { return config_; }

  // Runs `code` once the scripts handed over before it are done; its time limit counts from
  // when it starts.
  Execution execute(std::string_view code, const Arguments& args, size_t max_output) {
    return run([&] {
      OutputSink output(max_output);
      Execution execution;
      execution.result =
          backend_->execute(code, args, std::chrono::steady_clock::now() + config_.time_limit,
                            output);
      execution.output = std::move(output.text());
      execution.output_truncated = output.truncated();
      return execution;
    });
  }

 private:
  // Runs `job` on the interpreter's thread; a script::Error it throws gets the interpreter's
  // name in front of its message.
  template <class Job>
  std::invoke_result_t<Job&> run(Job&& job) {
    try {
      return worker_.run(std::forward<Job>(job));
    } catch (const Error& e) {
      throw Error(e.code(), "interpreter \"" + config_.name + "\": " + e.what());
    }
  }

  InterpreterConfig config_;
  thread::WorkerThread worker_;
  std::unique_ptr<Backend> backend_;
};

}  // namespace

class ProviderState {
 public:
  explicit ProviderState(const ProviderOptions& options)
      : max_code_size_(options.max_code_size), max_output_size_(options.max_output_size) {}

  void open(const std::string& name) const { (void)find(name); }

  Execution execute(const std::string& name, const std::string& code,
                    const Arguments& args) const {
    if (code.size() > max_code_size_) {
      throw Error(ErrorCode::kInvalidArgument,
                  "interpreter \"" + name + "\": a script of " + std::to_string(code.size()) +
                      " bytes is larger than the provider's max_code_size (" +
                      std::to_string(max_code_size_) + ")");
    }
    // The interpreter stays alive for this script even if it is destroyed meanwhile.
    return find(name)->execute(code, args, max_output_size_);
  }

  // Starts an interpreter; `path` is where its config came from, for ConfigError messages. No
  // lock is held while it starts (the calling ULT waits for the interpreter's thread): two
  // creates of one name may both start one, and the second to finish gives it up.
  void create(const InterpreterConfig& config, const std::string& path) {
    if (exists(config.name)) throw taken(config.name);
    std::shared_ptr<Hosted> hosted;
    try {
      hosted = std::make_shared<Hosted>(config);
    } catch (const ConfigError& e) {
      throw ConfigError(path.empty() ? std::string(e.what()) : path + "." + e.what());
    }
    {
      std::unique_lock lock(table_mutex_);
      if (table_.emplace(config.name, hosted).second) return;
    }
    throw taken(config.name);  // `hosted` is destroyed outside the lock
  }

  void destroy(std::string_view name) {
    std::shared_ptr<Hosted> gone;  // released outside the lock: it waits for queued scripts
    {
      std::unique_lock lock(table_mutex_);
      auto it = table_.find(name);
      if (it == table_.end()) throw unknown(name);
      gone = std::move(it->second);
      table_.erase(it);
    }
  }

  std::vector<InterpreterInfo> list() const {
    std::vector<InterpreterInfo> out;
    for (const InterpreterConfig& config : configs()) out.push_back({config.name, config.language});
    return out;
  }

  std::vector<InterpreterConfig> configs() const {
    std::shared_lock lock(table_mutex_);
    std::vector<InterpreterConfig> out;
    for (const auto& [name, hosted] : table_) out.push_back(hosted->config());
    return out;
  }

  // Destroys every interpreter (each after its queued scripts).
  void clear() {
    std::map<std::string, std::shared_ptr<Hosted>, std::less<>> gone;
    {
      std::unique_lock lock(table_mutex_);
      gone.swap(table_);
    }
  }

  size_t max_code_size() const { return max_code_size_; }
  size_t max_output_size() const { return max_output_size_; }

 private:
  static Error taken(const std::string& name) {
    return Error(ErrorCode::kInterpreterExists, "interpreter \"" + name + "\" already exists");
  }
  bool exists(std::string_view name) const {
    std::shared_lock lock(table_mutex_);
    return table_.find(name) != table_.end();
  }
  static Error unknown(std::string_view name) {
    return Error(ErrorCode::kUnknownInterpreter,
                 "no interpreter \"" + std::string(name) + "\" at this provider");
  }
  std::shared_ptr<Hosted> find(std::string_view name) const {
    std::shared_lock lock(table_mutex_);
    auto it = table_.find(name);
    if (it == table_.end()) throw unknown(name);
    return it->second;
  }

  const size_t max_code_size_;
  const size_t max_output_size_;
  mutable std::shared_mutex table_mutex_;
  std::map<std::string, std::shared_ptr<Hosted>, std::less<>> table_;
};

Provider::Provider(rpc::Engine& engine, rpc::ProviderId provider_id, ProviderOptions options,
                   thread::Pool pool)
    : rpc::Provider(engine, provider_id, pool),
      state_(std::make_unique<ProviderState>(options)) {
  std::set<std::string, std::less<>> names;
  for (size_t i = 0; i < options.interpreters.size(); ++i) {
    if (!names.insert(options.interpreters[i].name).second) {
      config::fail(config::join(config::join("interpreters", i), "name"),
                   "duplicate interpreter name \"" + options.interpreters[i].name + "\"");
    }
  }
  for (size_t i = 0; i < options.interpreters.size(); ++i) {
    state_->create(options.interpreters[i], config::join("interpreters", i));
  }

  ProviderState* s = state_.get();
  using protocol::Outcome;
  define(protocol::kExecute,
         [s](const std::string& name, const std::string& code, const Arguments& args) {
    return guarded<protocol::ExecuteReply, Error>([&] {
      return protocol::ExecuteReply{.execution = s->execute(name, code, args)};
    });
  });
  define(protocol::kOpen, [s](const std::string& name) {
    return guarded<Outcome, Error>([&] {
      s->open(name);
      return Outcome{};
    });
  });
  define(protocol::kCreateInterpreter, [s](const std::string& json) {
    return guarded<Outcome, Error>([&] {
      nlohmann::json parsed;
      try {
        parsed = nlohmann::json::parse(json);
      } catch (const nlohmann::json::exception& e) {
        throw Error(ErrorCode::kInvalidArgument,
                    std::string("interpreter config is not JSON: ") + e.what());
      }
      s->create(InterpreterConfig::from_json(parsed), "");
      return Outcome{};
    });
  });
  define(protocol::kDestroyInterpreter, [s](const std::string& name) {
    return guarded<Outcome, Error>([&] {
      s->destroy(name);
      return Outcome{};
    });
  });
  define(protocol::kListInterpreters, [s]() {
    return guarded<protocol::ListReply, Error>(
        [&] { return protocol::ListReply{.interpreters = s->list()}; });
  });
}

Provider::~Provider() {
  stop_serving();
  state_->clear();
}

nlohmann::json Provider::config() const {
  ProviderOptions options{.max_code_size = state_->max_code_size(),
                          .max_output_size = state_->max_output_size()};
  options.interpreters = state_->configs();
  return options.to_json();
}

void Provider::create_interpreter(const InterpreterConfig& config) { state_->create(config, ""); }

void Provider::destroy_interpreter(std::string_view name) { state_->destroy(name); }

std::vector<InterpreterInfo> Provider::interpreters() const { return state_->list(); }

}  // namespace dango::script
