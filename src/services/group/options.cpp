// Group options from and to JSON, and their validation.

#include "dango/services/group/options.hpp"

#include <nlohmann/json.hpp>

#include "bootstrap.hpp"
#include "dango/common/config.hpp"

namespace dango::group {

SwimOptions SwimOptions::from_json(const nlohmann::json& json, std::string_view path) {
  config::ConfigReader reader(json, std::string(path));
  SwimOptions options;
  reader.get("period_ms", options.period);
  reader.get("ping_timeout_ms", options.ping_timeout);
  reader.get("indirect_pings", options.indirect_pings);
  reader.get("suspicion_timeout_ms", options.suspicion_timeout);
  reader.get("retransmit_multiplier", options.retransmit_multiplier);
  reader.get("max_piggyback", options.max_piggyback);
  reader.finish();
  options.validate(path);
  return options;
}

nlohmann::json SwimOptions::to_json() const {
  return {{"period_ms", period.count()},
          {"ping_timeout_ms", ping_timeout.count()},
          {"indirect_pings", indirect_pings},
          {"suspicion_timeout_ms", suspicion_timeout.count()},
          {"retransmit_multiplier", retransmit_multiplier},
          {"max_piggyback", max_piggyback}};
}

void SwimOptions::validate(std::string_view path) const {
  if (period.count() <= 0) config::fail(config::join(path, "period_ms"), "must be positive");
  if (ping_timeout.count() <= 0 || ping_timeout >= period) {
    config::fail(config::join(path, "ping_timeout_ms"),
                 "must be positive and below period_ms (" + std::to_string(period.count()) + ")");
  }
  if (suspicion_timeout < period) {
    config::fail(config::join(path, "suspicion_timeout_ms"),
                 "must be at least period_ms (" + std::to_string(period.count()) + ")");
  }
  if (retransmit_multiplier == 0) {
    config::fail(config::join(path, "retransmit_multiplier"), "must be at least 1");
  }
  if (max_piggyback == 0) config::fail(config::join(path, "max_piggyback"), "must be at least 1");
}

GroupOptions GroupOptions::from_json(const nlohmann::json& json, std::string_view path) {
  config::ConfigReader reader(json, std::string(path));
  GroupOptions options;
  reader.require("name", options.name);
  reader.get("bootstrap", options.bootstrap);
  reader.get("file", options.file);
  reader.get("view", options.view);
  reader.get("join", options.join);
  reader.get("provider_id", options.provider_id);
  reader.get("join_timeout_ms", options.join_timeout);
  nlohmann::json swim;
  if (reader.get("swim", swim))
    options.swim = SwimOptions::from_json(swim, config::join(path, "swim"));
  reader.finish();
  options.validate(path);
  return options;
}

nlohmann::json GroupOptions::to_json() const {
  return {{"name", name},
          {"bootstrap", bootstrap},
          {"file", file},
          {"view", view},
          {"join", join},
          {"provider_id", provider_id},
          {"join_timeout_ms", join_timeout.count()},
          {"swim", swim.to_json()}};
}

void GroupOptions::validate(std::string_view path) const {
  if (name.empty()) config::fail(config::join(path, "name"), "must not be empty");
  const detail::BootstrapMethod* method = detail::find_bootstrap(bootstrap);
  if (method == nullptr) {
    std::string names;
    for (const auto& known : detail::bootstrap_names())
      names += (names.empty() ? "" : ", ") + known;
    config::fail(config::join(path, "bootstrap"),
                 "unknown bootstrap \"" + bootstrap + "\" (expected one of: " + names + ")");
  }
  if (method->validate) method->validate(*this, path);
  if (join_timeout.count() <= 0)
    config::fail(config::join(path, "join_timeout_ms"), "must be positive");
  swim.validate(config::join(path, "swim"));
}

}  // namespace dango::group
