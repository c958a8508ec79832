// pdl_enabled(): the HARDKV_PDL kill switch for programmatic dependent launch (pdl.cuh).
#include <cstdlib>
#include <cstring>

namespace hardkv::cuda {

bool pdl_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("HARDKV_PDL");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return on;
}

}  // namespace hardkv::cuda
