// Safetensors checkpoints: a memory-mapped reader for one file, a reader over a sharded
// checkpoint (model.safetensors.index.json), and a writer. Every malformed input ends in an Error
// (kBadFile) whose message names the file, the tensor and what is wrong.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace hardkv {

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  size_t offset = 0;  // byte offset of the data from the start of the data section
  size_t nbytes = 0;
};

// One .safetensors file, memory-mapped read-only for its lifetime.
class SafetensorsFile {
 public:
  // Validates the header: size, JSON, dtypes, shapes, offsets inside the file, no overlaps.
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorInfo* find(const std::string& name) const;
  // A host view into the mapping (kept alive by the returned tensor).
  Tensor view(const TensorInfo& info) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  size_t data_start_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
  std::weak_ptr<SafetensorsFile> self_;
  friend class CheckpointReader;
};

// All tensors of a checkpoint directory: model.safetensors, or the shards named by
// model.safetensors.index.json (each shard checked to hold what the index says).
class CheckpointReader {
 public:
  static CheckpointReader open(const std::string& model_dir);

  bool has(const std::string& name) const;
  std::vector<std::string> names() const;
  // The tensor's file (for messages).
  const std::string& file_of(const std::string& name) const;
  // A host view; throws kBadFile naming the directory and tensor when it is missing.
  Tensor get(const std::string& name) const;
  // As get(), and checks the shape (kBadFile naming file, tensor, expected and found shapes) and
  // that the dtype is a float type (F32/F16/BF16).
  Tensor get_checked(const std::string& name, const Shape& expected_shape) const;

 private:
  std::string dir_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, std::pair<size_t, const TensorInfo*>> index_;  // name -> (file, info)
};

// Writes tensors (host, any dtype) to a .safetensors file with optional string metadata.
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace hardkv
