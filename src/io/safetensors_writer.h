// SafetensorsWriter: streams a .safetensors file tensor by tensor, so that checkpoints larger
// than memory can be written (the header, with every offset, is written first).
#pragma once

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/safetensors.h"

namespace hardkv {

// Contract: construct with the full list of tensors (name, dtype, shape; offset/nbytes are
// computed), then call write() once per tensor in that order, each call appending any number of
// byte chunks through append(); finish() checks every byte was written and closes the file.
class SafetensorsWriter {
 public:
  SafetensorsWriter(std::string path, std::vector<TensorInfo> tensors,
                    const std::map<std::string, std::string>& metadata = {});
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  // Layout with offsets and sizes filled in, in file order.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // Total file size in bytes (header included).
  size_t file_bytes() const { return file_bytes_; }

  // Appends `nbytes` bytes of tensor data; tensors are filled in order, chunks may span tensors.
  void append(const void* data, size_t nbytes);
  // Writes the whole of the next tensor, checking its name and byte size.
  void write(const std::string& name, const void* data, size_t nbytes);
  // Checks that all tensor bytes were written, flushes and closes; throws kRuntime on I/O error.
  void finish();

 private:
  std::string path_;
  std::vector<TensorInfo> tensors_;
  size_t data_bytes_ = 0;
  size_t file_bytes_ = 0;
  size_t written_ = 0;  // data bytes appended so far
  std::FILE* fp_ = nullptr;
};

}  // namespace hardkv
