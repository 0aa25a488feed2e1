// Installs the hang watchdog (tests/common/hang_watchdog.hpp) in the thread-layer test program.
#include "common/hang_watchdog.hpp"
