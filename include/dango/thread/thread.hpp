#pragma once
// Everything of the user-level-thread layer.
#include "dango/thread/eventual.hpp"
#include "dango/thread/options.hpp"
#include "dango/thread/runtime.hpp"
#include "dango/thread/sync.hpp"
#include "dango/thread/ult.hpp"
