// Test module "counter": a provider holding an int64 that clients add to ("counter.add",
// "counter.get"). Config: {"start": int (default 0), "journal": path (default "": none)}; the
// journal file gets "start NAME" and "stop NAME" lines, so tests can check the order in which
// the daemon starts and stops providers. Optional dependency slot "after" (any type, several)
// only orders the start. Linked into test_compose and built as libdango-module-counter.so for
// dango-daemon's --module-path.

#include <atomic>
#include <fstream>

#include "dango/common/config.hpp"
#include "dango/compose/module.hpp"
#include "dango/rpc/provider.hpp"

namespace {

struct CounterOptions {
  int64_t start = 0;
  std::string journal{};

  static CounterOptions from_json(const nlohmann::json& json, std::string_view path) {
    CounterOptions options;
    dango::config::ConfigReader reader(json, std::string(path));
    reader.get("start", options.start);
    reader.get("journal", options.journal);
    reader.finish();
    return options;
  }
  nlohmann::json to_json() const { return {{"start", start}, {"journal", journal}}; }
};

void journal(const std::string& file, const std::string& line) {
  if (file.empty()) return;
  std::ofstream out(file, std::ios::app);
  out << line << '\n';
}

class Counter : public dango::rpc::Provider, public dango::compose::Component {
 public:
  Counter(const dango::compose::ComponentArgs& args, CounterOptions options)
      : Provider(args.engine, args.provider_id, args.pool),
        options_(std::move(options)),
        name_(args.name),
        value_(options_.start) {
    define("counter.add", [this](int64_t n) { return value_ += n; });
    define("counter.get", [this] { return value_.load(); });
    journal(options_.journal, "start " + name_);
  }
  nlohmann::json config() const override { return options_.to_json(); }
  void stop() override { journal(options_.journal, "stop " + name_); }

 private:
  CounterOptions options_;
  std::string name_;
  std::atomic<int64_t> value_;
};

class CounterModule : public dango::compose::Module {
 public:
  std::vector<dango::compose::DependencySlot> dependencies() const override {
    return {{.name = "after", .type = "", .required = false, .multiple = true}};
  }
  void validate(const nlohmann::json& config, std::string_view path) const override {
    (void)CounterOptions::from_json(config, path);
  }
  std::unique_ptr<dango::compose::Component> create(
      const dango::compose::ComponentArgs& args) const override {
    return std::make_unique<Counter>(args,
                                     CounterOptions::from_json(args.config, args.config_path));
  }
};

}  // namespace

DANGO_REGISTER_MODULE(counter, CounterModule)
