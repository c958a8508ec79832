// Error construction and kind names.
#include "core/error.h"

#include <fmt/format.h>

namespace hardkv {

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidArgument: return "invalid argument";
    case ErrorKind::kBadFile: return "bad file";
    case ErrorKind::kUnsupported: return "unsupported";
    case ErrorKind::kOutOfMemory: return "out of memory";
    case ErrorKind::kRuntime: return "runtime error";
    case ErrorKind::kInternal: return "internal error";
  }
  return "error";
}

static std::string base_name(const char* path) {
  std::string p(path);
  size_t slash = p.find("/src/");
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

Error::Error(ErrorKind kind, const std::string& message, const char* file, int line,
             const char* func)
    : std::runtime_error(message),
      kind_(kind),
      message_(message),
      where_(fmt::format("{}:{} ({})", base_name(file), line, func)) {}

}  // namespace hardkv
