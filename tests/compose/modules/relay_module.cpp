// Test module "relay": forwards "relay.add"(n) to the counter it depends on (slot "target",
// required, type "counter"), in this process or another one, proving that dependencies are
// resolved to a usable address and provider id. Config: {} (nothing accepted). Linked into
// test_compose and built as libdango-module-relay.so for dango-daemon's --module-path.

#include "dango/common/config.hpp"
#include "dango/compose/module.hpp"
#include "dango/rpc/provider.hpp"

namespace {

class Relay : public dango::rpc::Provider, public dango::compose::Component {
 public:
  explicit Relay(const dango::compose::ComponentArgs& args)
      : Provider(args.engine, args.provider_id, args.pool), target_(args.dependency("target")) {
    define("relay.add", [this](int64_t n) {
      auto add = engine().rpc<int64_t(int64_t)>("counter.add");
      return add.on(engine().lookup(target_.address)).with(target_.provider_id)(n);
    });
  }
  nlohmann::json config() const override { return nlohmann::json::object(); }

 private:
  dango::compose::ResolvedDependency target_;
};

class RelayModule : public dango::compose::Module {
 public:
  std::vector<dango::compose::DependencySlot> dependencies() const override {
    return {{.name = "target", .type = "counter", .required = true, .multiple = false}};
  }
  void validate(const nlohmann::json& config, std::string_view path) const override {
    dango::config::ConfigReader(config, std::string(path)).finish();
  }
  std::unique_ptr<dango::compose::Component> create(
      const dango::compose::ComponentArgs& args) const override {
    return std::make_unique<Relay>(args);
  }
};

}  // namespace

DANGO_REGISTER_MODULE(relay, RelayModule)
