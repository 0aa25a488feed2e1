#include "dango/common/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <mutex>
#include <string>

namespace dango::log {

std::shared_ptr<spdlog::logger> get(std::string_view component) {
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  std::string name{component};
  if (auto existing = spdlog::get(name)) return existing;
  auto logger = spdlog::stderr_color_mt(name);
  const char* level = std::getenv("DANGO_LOG_LEVEL");
  logger->set_level(level ? spdlog::level::from_str(level) : spdlog::level::warn);
  return logger;
}

}  // namespace dango::log
