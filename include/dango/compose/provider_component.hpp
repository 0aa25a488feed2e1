#pragma once
// A Component that owns one provider object: what most modules' create() returns.
//
//   return std::make_unique<compose::ProviderComponent<kv::Provider>>(
//       std::make_unique<kv::Provider>(args.engine, args.provider_id, options, args.pool));
//
// config() asks the provider for its effective configuration (it must have
// `nlohmann::json config() const`); stop() destroys the provider — which stops serving and
// releases its resources — and keeps the last configuration for later config() calls.

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>

#include "dango/compose/module.hpp"
#include "dango/thread/sync.hpp"

namespace dango::compose {

template <class ProviderT>
class ProviderComponent : public Component {
 public:
  explicit ProviderComponent(std::unique_ptr<ProviderT> provider)
      : provider_(std::move(provider)) {}

  nlohmann::json config() const override {
    std::lock_guard lock(mutex_);
    return provider_ ? provider_->config() : stopped_config_;
  }

  // Destroyed outside the lock: a provider may wait for its running handlers, which may ask
  // for config().
  void stop() override {
    std::unique_ptr<ProviderT> closing;
    {
      std::lock_guard lock(mutex_);
      if (!provider_) return;
      stopped_config_ = provider_->config();
      closing = std::move(provider_);
    }
    closing.reset();
  }

 private:
  mutable thread::Mutex mutex_;  // guards provider_ against config() during stop()
  std::unique_ptr<ProviderT> provider_;
  nlohmann::json stopped_config_;
};

}  // namespace dango::compose
