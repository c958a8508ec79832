// Typed errors for library code: every throw carries a kind, a message that says what was wrong
// (and, where it helps, what to do), and the throwing file/line/function.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace hardkv {

enum class ErrorKind {
  kInvalidArgument,  // a caller or user gave a bad value (flag, request, sampling parameter)
  kBadFile,          // a model/tokenizer/data file is missing, truncated or malformed
  kUnsupported,      // a valid input hardkv does not handle (architecture, dtype, ...)
  kOutOfMemory,      // host or device memory, or the KV pool, cannot hold what was asked
  kRuntime,          // a failure at run time (CUDA error, I/O error)
  kInternal,         // a broken invariant: a bug in hardkv
};

const char* error_kind_name(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message, const char* file, int line, const char* func);
  ErrorKind kind() const { return kind_; }
  // The user-facing message without source location.
  const std::string& message() const { return message_; }
  // "file:line (func)" of the throw site.
  const std::string& where() const { return where_; }

 private:
  ErrorKind kind_;
  std::string message_;
  std::string where_;
};

}  // namespace hardkv

// HARDKV_THROW(kBadFile, "{}: tensor '{}' has shape {}", path, name, shape)
#define HARDKV_THROW(kind, ...)                                                            \
  throw ::hardkv::Error(::hardkv::ErrorKind::kind, ::fmt::format(__VA_ARGS__), __FILE__, \
                        __LINE__, __func__)

// HARDKV_CHECK(cond, kind, fmt...): throw when cond is false.
#define HARDKV_CHECK(cond, kind, ...) \
  do {                                \
    if (!(cond)) {                    \
      HARDKV_THROW(kind, __VA_ARGS__); \
    }                                 \
  } while (0)

// Internal invariant; a failure is a hardkv bug.
#define HARDKV_ASSERT(cond)                                                         \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      HARDKV_THROW(kInternal, "internal invariant failed: {}", #cond);              \
    }                                                                               \
  } while (0)
