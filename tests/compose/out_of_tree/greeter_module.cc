// An out-of-tree component "greeter": greets by RPC ("greeter.greet"(name) -> "<greeting>,
// <name>") with the greeting from its config {"greeting": string, default "hello"}.

#include <dango/common/config.hpp>
#include <dango/compose/module.hpp>
#include <dango/rpc/provider.hpp>

namespace {

class Greeter : public dango::rpc::Provider, public dango::compose::Component {
 public:
  Greeter(const dango::compose::ComponentArgs& args, std::string greeting)
      : Provider(args.engine, args.provider_id, args.pool), greeting_(std::move(greeting)) {
    define("greeter.greet", [this](const std::string& name) { return greeting_ + ", " + name; });
  }
  nlohmann::json config() const override { return {{"greeting", greeting_}}; }

 private:
  std::string greeting_;
};

class GreeterModule : public dango::compose::Module {
 public:
  void validate(const nlohmann::json& config, std::string_view path) const override {
    (void)greeting(config, path);
  }
  std::unique_ptr<dango::compose::Component> create(
      const dango::compose::ComponentArgs& args) const override {
    return std::make_unique<Greeter>(args, greeting(args.config, args.config_path));
  }

 private:
  static std::string greeting(const nlohmann::json& config, std::string_view path) {
    std::string greeting = "hello";
    dango::config::ConfigReader reader(config, std::string(path));
    reader.get("greeting", greeting);
    reader.finish();
    return greeting;
  }
};

}  // namespace

DANGO_REGISTER_MODULE(greeter, GreeterModule)
