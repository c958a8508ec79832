// CheckpointReader: every tensor of a checkpoint directory, from model.safetensors or from the
// shards listed in model.safetensors.index.json (each shard checked against the index).
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "io/safetensors.h"

namespace hardkv {
namespace {

namespace fs = std::filesystem;

constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

nlohmann::json read_index(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  HARDKV_CHECK(in.good(), kBadFile, "{}: cannot open", path);
  std::stringstream buf;
  buf << in.rdbuf();
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(buf.str());
  } catch (const nlohmann::json::exception& e) {
    HARDKV_THROW(kBadFile, "{}: not valid JSON ({})", path, e.what());
  }
  HARDKV_CHECK(doc.is_object(), kBadFile, "{}: not a JSON object (found {})", path,
               doc.type_name());
  HARDKV_CHECK(doc.contains("weight_map"), kBadFile, "{}: has no 'weight_map'", path);
  HARDKV_CHECK(doc["weight_map"].is_object(), kBadFile,
               "{}: 'weight_map' must be an object of tensor name -> shard file, found {}", path,
               doc["weight_map"].type_name());
  return doc;
}

// A shard name must be a plain file name inside the checkpoint directory.
bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos && name != "." && name != "..";
}

}  // namespace

CheckpointReader CheckpointReader::open(const std::string& model_dir) {
  CheckpointReader reader;
  reader.dir_ = model_dir;
  std::error_code ec;
  HARDKV_CHECK(fs::is_directory(model_dir, ec), kBadFile,
               "{}: model directory does not exist or is not a directory", model_dir);
  const std::string index_path = (fs::path(model_dir) / kIndexName).string();
  const std::string single_path = (fs::path(model_dir) / kSingleName).string();

  if (fs::exists(index_path, ec)) {
    nlohmann::json doc = read_index(index_path);
    std::map<std::string, size_t> shard_idx;  // shard file name -> files_ index
    for (auto it = doc["weight_map"].begin(); it != doc["weight_map"].end(); ++it) {
      HARDKV_CHECK(it->is_string(), kBadFile,
                   "{}: tensor '{}': shard must be a file name string, found {}", index_path,
                   it.key(), it->type_name());
      const std::string shard = it->get<std::string>();
      HARDKV_CHECK(is_plain_file_name(shard), kBadFile,
                   "{}: tensor '{}': shard '{}' is not a plain file name in the directory",
                   index_path, it.key(), shard);
      auto found = shard_idx.find(shard);
      if (found == shard_idx.end()) {
        const std::string shard_path = (fs::path(model_dir) / shard).string();
        HARDKV_CHECK(fs::exists(shard_path, ec), kBadFile,
                     "{}: tensor '{}' is assigned to shard '{}', but {} does not exist",
                     index_path, it.key(), shard, shard_path);
        reader.files_.push_back(SafetensorsFile::open(shard_path));
        found = shard_idx.emplace(shard, reader.files_.size() - 1).first;
      }
      const SafetensorsFile& file = *reader.files_[found->second];
      const TensorInfo* info = file.find(it.key());
      HARDKV_CHECK(info != nullptr, kBadFile,
                   "{}: tensor '{}' is missing: {} assigns it to this shard, but the shard does "
                   "not hold it",
                   file.path(), it.key(), index_path);
      reader.index_[it.key()] = {found->second, info};
    }
    HARDKV_CHECK(!reader.index_.empty(), kBadFile, "{}: 'weight_map' is empty", index_path);
    return reader;
  }

  HARDKV_CHECK(fs::exists(single_path, ec), kBadFile,
               "{}: no {} or {} in the model directory", model_dir, kSingleName, kIndexName);
  reader.files_.push_back(SafetensorsFile::open(single_path));
  for (const TensorInfo& info : reader.files_[0]->tensors()) {
    reader.index_[info.name] = {0, &info};
  }
  return reader;
}

bool CheckpointReader::has(const std::string& name) const { return index_.count(name) != 0; }

std::vector<std::string> CheckpointReader::names() const {
  std::vector<std::string> out;
  out.reserve(index_.size());
  for (const auto& [name, entry] : index_) out.push_back(name);
  return out;
}

const std::string& CheckpointReader::file_of(const std::string& name) const {
  auto it = index_.find(name);
  HARDKV_CHECK(it != index_.end(), kBadFile, "{}: checkpoint has no tensor '{}'", dir_, name);
  return files_[it->second.first]->path();
}

Tensor CheckpointReader::get(const std::string& name) const {
  auto it = index_.find(name);
  HARDKV_CHECK(it != index_.end(), kBadFile, "{}: checkpoint has no tensor '{}' (missing tensor)",
               dir_, name);
  return files_[it->second.first]->view(*it->second.second);
}

Tensor CheckpointReader::get_checked(const std::string& name, const Shape& expected_shape) const {
  Tensor t = get(name);
  const std::string& path = file_of(name);
  HARDKV_CHECK(t.shape() == expected_shape, kBadFile,
               "{}: tensor '{}' has shape {}, expected {}", path, name, shape_str(t.shape()),
               shape_str(expected_shape));
  const DType d = t.dtype();
  HARDKV_CHECK(d == DType::kF32 || d == DType::kF16 || d == DType::kBF16, kBadFile,
               "{}: tensor '{}' has dtype {}, expected a float type (F32, F16 or BF16)", path,
               name, dtype_name(d));
  return t;
}

}  // namespace hardkv
