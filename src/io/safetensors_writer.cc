// SafetensorsWriter (streaming) and write_safetensors (whole tensors in memory).
#include "io/safetensors_writer.h"

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"

namespace hardkv {

SafetensorsWriter::SafetensorsWriter(std::string path, std::vector<TensorInfo> tensors,
                                     const std::map<std::string, std::string>& metadata)
    : path_(std::move(path)), tensors_(std::move(tensors)) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = meta;
  }
  std::set<std::string> names;
  size_t offset = 0;
  for (TensorInfo& t : tensors_) {
    HARDKV_CHECK(t.name != "__metadata__" && !t.name.empty(), kInvalidArgument,
                 "{}: invalid tensor name '{}'", path_, t.name);
    HARDKV_CHECK(names.insert(t.name).second, kInvalidArgument, "{}: tensor '{}' given twice",
                 path_, t.name);
    for (int64_t d : t.shape) {
      HARDKV_CHECK(d >= 0, kInvalidArgument, "{}: tensor '{}' has negative shape {}", path_,
                   t.name, shape_str(t.shape));
    }
    t.offset = offset;
    t.nbytes = static_cast<size_t>(shape_numel(t.shape)) * dtype_size(t.dtype);
    offset += t.nbytes;
    nlohmann::ordered_json entry;
    entry["dtype"] = dtype_name(t.dtype);
    entry["shape"] = t.shape;
    entry["data_offsets"] = {t.offset, t.offset + t.nbytes};
    header[t.name] = entry;
  }
  data_bytes_ = offset;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // pad so the data section is 8-byte aligned
  file_bytes_ = 8 + text.size() + data_bytes_;

  fp_ = std::fopen(path_.c_str(), "wb");
  HARDKV_CHECK(fp_ != nullptr, kRuntime, "{}: cannot create ({})", path_, std::strerror(errno));
  unsigned char len_bytes[8];
  uint64_t len = text.size();
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<unsigned char>(len >> (8 * i));
  HARDKV_CHECK(std::fwrite(len_bytes, 1, 8, fp_) == 8 &&
                   std::fwrite(text.data(), 1, text.size(), fp_) == text.size(),
               kRuntime, "{}: write failed ({})", path_, std::strerror(errno));
}

SafetensorsWriter::~SafetensorsWriter() {
  if (fp_ != nullptr) std::fclose(fp_);
}

void SafetensorsWriter::append(const void* data, size_t nbytes) {
  HARDKV_CHECK(fp_ != nullptr, kInternal, "{}: append after finish", path_);
  HARDKV_CHECK(written_ + nbytes <= data_bytes_, kInternal,
               "{}: {} bytes appended past the {} bytes of tensor data", path_, written_ + nbytes,
               data_bytes_);
  if (nbytes == 0) return;
  HARDKV_CHECK(std::fwrite(data, 1, nbytes, fp_) == nbytes, kRuntime, "{}: write failed ({})",
               path_, std::strerror(errno));
  written_ += nbytes;
}

void SafetensorsWriter::write(const std::string& name, const void* data, size_t nbytes) {
  // The next tensor is the first whose data ends after what was written so far (zero-size
  // tensors at the current offset are skipped over by name).
  const TensorInfo* next = nullptr;
  for (const TensorInfo& t : tensors_) {
    if (t.offset == written_ && t.name == name) {
      next = &t;
      break;
    }
  }
  HARDKV_CHECK(next != nullptr, kInternal, "{}: tensor '{}' written out of order", path_, name);
  HARDKV_CHECK(next->nbytes == nbytes, kInternal, "{}: tensor '{}' has {} bytes, {} given", path_,
               name, next->nbytes, nbytes);
  append(data, nbytes);
}

void SafetensorsWriter::finish() {
  HARDKV_CHECK(fp_ != nullptr, kInternal, "{}: finish called twice", path_);
  HARDKV_CHECK(written_ == data_bytes_, kInternal, "{}: {} of {} tensor bytes written", path_,
               written_, data_bytes_);
  std::FILE* fp = fp_;
  fp_ = nullptr;
  const bool ok = std::fflush(fp) == 0;
  const bool closed = std::fclose(fp) == 0;
  HARDKV_CHECK(ok && closed, kRuntime, "{}: write failed ({})", path_, std::strerror(errno));
}

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<TensorInfo> layout;
  for (const auto& [name, t] : tensors) {
    HARDKV_CHECK(t.device() == Device::kCPU, kInvalidArgument,
                 "{}: tensor '{}' is not in host memory", path, name);
    HARDKV_CHECK(t.defined() || t.numel() == 0, kInvalidArgument, "{}: tensor '{}' has no data",
                 path, name);
    TensorInfo info;
    info.name = name;
    info.dtype = t.dtype();
    info.shape = t.shape();
    layout.push_back(std::move(info));
  }
  SafetensorsWriter writer(path, std::move(layout), metadata);
  for (const auto& [name, t] : tensors) writer.write(name, t.data(), t.nbytes());
  writer.finish();
}

}  // namespace hardkv
