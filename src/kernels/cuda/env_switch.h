// On/off switches read from the environment (HARDKV_* variables that select a kernel path, for
// A/B measurements): "0" is off, "1" is on, unset or anything else is the path's default.
#pragma once

#include <cstdlib>
#include <cstring>

namespace hardkv::cuda {

inline bool env_switch(const char* name, bool default_on) {
  const char* v = std::getenv(name);
  if (v == nullptr) return default_on;
  if (std::strcmp(v, "0") == 0) return false;
  if (std::strcmp(v, "1") == 0) return true;
  return default_on;
}

// The session-8 sampling paths (one-pass temperature rows, results written to the mapped slot by
// the kernel, the plain greedy kernel): off unless switched on until a GPU run has checked them.
inline constexpr bool kSamplePathsDefaultOn = false;

}  // namespace hardkv::cuda
