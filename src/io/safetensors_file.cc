// SafetensorsFile: maps one .safetensors file read-only and validates its header (length, JSON,
// dtypes, shapes, offsets, sizes, overlaps) before any tensor is handed out.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "io/safetensors.h"

namespace hardkv {
namespace {

// Headers of real checkpoints are well under 1 MiB; anything larger is corrupt or hostile.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

// Safetensors dtypes that exist in the format but that hardkv does not read.
bool is_known_unsupported_dtype(const std::string& name) {
  static const std::set<std::string> kNames = {"F64", "I8", "I16", "U16", "U32", "U64",
                                               "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3",
                                               "F6_E3M2", "C64"};
  return kNames.count(name) != 0;
}

struct FileCloser {
  int fd;
  ~FileCloser() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads a JSON value that must be a non-negative integer; false when it is anything else.
bool json_to_u64(const nlohmann::json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer()) {
    int64_t s = v.get<int64_t>();
    if (s < 0) return false;
    *out = static_cast<uint64_t>(s);
    return true;
  }
  return false;
}

// Parses one header entry into `info`; `data_size` is the size of the data section in bytes.
void parse_entry(const std::string& path, const std::string& name, const nlohmann::json& entry,
                 uint64_t data_size, TensorInfo* info) {
  info->name = name;
  HARDKV_CHECK(entry.is_object(), kBadFile,
               "{}: tensor '{}': header entry is not a JSON object (found {})", path, name,
               entry.type_name());
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    HARDKV_CHECK(entry.contains(field), kBadFile, "{}: tensor '{}': header entry has no '{}'",
                 path, name, field);
  }
  const nlohmann::json& dtype = entry["dtype"];
  HARDKV_CHECK(dtype.is_string(), kBadFile, "{}: tensor '{}': 'dtype' must be a string, found {}",
               path, name, dtype.type_name());
  const std::string dtype_str = dtype.get<std::string>();
  if (!dtype_from_safetensors(dtype_str, &info->dtype)) {
    if (is_known_unsupported_dtype(dtype_str)) {
      HARDKV_THROW(kUnsupported,
                   "{}: tensor '{}' has dtype {}, which hardkv does not read (supported: F32, "
                   "F16, BF16, I32, I64, U8, BOOL)",
                   path, name, dtype_str);
    }
    HARDKV_THROW(kBadFile, "{}: tensor '{}' has unknown dtype '{}'", path, name, dtype_str);
  }

  const nlohmann::json& shape = entry["shape"];
  HARDKV_CHECK(shape.is_array(), kBadFile, "{}: tensor '{}': 'shape' must be an array, found {}",
               path, name, shape.type_name());
  HARDKV_CHECK(shape.size() <= 16, kBadFile, "{}: tensor '{}': shape has {} dimensions (max 16)",
               path, name, shape.size());
  uint64_t numel = 1;
  info->shape.clear();
  for (const nlohmann::json& d : shape) {
    uint64_t dim = 0;
    HARDKV_CHECK(json_to_u64(d, &dim), kBadFile,
                 "{}: tensor '{}': shape {} has a dimension that is not a non-negative integer",
                 path, name, shape.dump());
    HARDKV_CHECK(dim <= static_cast<uint64_t>(INT64_MAX), kBadFile,
                 "{}: tensor '{}': shape {} has a dimension too large", path, name, shape.dump());
    HARDKV_CHECK(!__builtin_mul_overflow(numel, dim, &numel), kBadFile,
                 "{}: tensor '{}': shape {} overflows the element count", path, name,
                 shape.dump());
    info->shape.push_back(static_cast<int64_t>(dim));
  }
  uint64_t expected_bytes = 0;
  HARDKV_CHECK(!__builtin_mul_overflow(numel, dtype_size(info->dtype), &expected_bytes) &&
                   expected_bytes <= static_cast<uint64_t>(INT64_MAX),
               kBadFile, "{}: tensor '{}': shape {} overflows the byte size", path, name,
               shape.dump());

  const nlohmann::json& offsets = entry["data_offsets"];
  uint64_t begin = 0, end = 0;
  HARDKV_CHECK(offsets.is_array() && offsets.size() == 2 && json_to_u64(offsets[0], &begin) &&
                   json_to_u64(offsets[1], &end),
               kBadFile,
               "{}: tensor '{}': 'data_offsets' must be [begin, end] with non-negative integers, "
               "found {}",
               path, name, offsets.dump());
  HARDKV_CHECK(begin <= end, kBadFile, "{}: tensor '{}': data_offsets [{}, {}] are reversed",
               path, name, begin, end);
  HARDKV_CHECK(end <= data_size, kBadFile,
               "{}: tensor '{}': data_offsets [{}, {}] run past the end of the data section "
               "({} bytes; the file is truncated or the header is wrong)",
               path, name, begin, end, data_size);
  HARDKV_CHECK(end - begin == expected_bytes, kBadFile,
               "{}: tensor '{}': data_offsets [{}, {}] hold {} bytes, but dtype {} x shape {} "
               "needs {} bytes",
               path, name, begin, end, end - begin, dtype_str, shape_str(info->shape),
               expected_bytes);
  info->offset = static_cast<size_t>(begin);
  info->nbytes = static_cast<size_t>(expected_bytes);
}

// Parses the header JSON; rejects duplicate keys at the top level (nlohmann would keep the last).
nlohmann::json parse_header_json(const std::string& path, const char* text, size_t len) {
  std::set<std::string> seen;
  std::string duplicate;
  auto callback = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (event == nlohmann::json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      if (!seen.insert(parsed.get<std::string>()).second && duplicate.empty()) {
        duplicate = parsed.get<std::string>();
      }
    }
    return true;
  };
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text, text + len, callback);
  } catch (const nlohmann::json::exception& e) {
    HARDKV_THROW(kBadFile, "{}: header is not valid JSON ({})", path, e.what());
  }
  HARDKV_CHECK(doc.is_object(), kBadFile, "{}: header is not a JSON object (found {})", path,
               doc.type_name());
  HARDKV_CHECK(duplicate.empty(), kBadFile, "{}: tensor '{}' appears twice in the header", path,
               duplicate);
  return doc;
}

}  // namespace

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  HARDKV_CHECK(fd >= 0, kBadFile, "{}: cannot open ({})", path, std::strerror(errno));
  FileCloser closer{fd};
  struct stat st;
  HARDKV_CHECK(::fstat(fd, &st) == 0, kBadFile, "{}: cannot stat ({})", path,
               std::strerror(errno));
  HARDKV_CHECK(S_ISREG(st.st_mode), kBadFile, "{}: not a regular file", path);
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  HARDKV_CHECK(file_size >= 8, kBadFile,
               "{}: file is {} bytes, shorter than the 8-byte header length (truncated?)", path,
               file_size);

  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  void* map = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  HARDKV_CHECK(map != MAP_FAILED, kBadFile, "{}: cannot mmap {} bytes ({})", path, file_size,
               std::strerror(errno));
  file->map_ = map;
  file->map_size_ = file_size;
  file->self_ = file;

  const auto* bytes = static_cast<const unsigned char*>(map);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];  // little-endian
  HARDKV_CHECK(header_len <= kMaxHeaderBytes, kBadFile,
               "{}: header length {} bytes exceeds the {} MiB limit (corrupt file?)", path,
               header_len, kMaxHeaderBytes >> 20);
  HARDKV_CHECK(header_len <= file_size - 8, kBadFile,
               "{}: header length {} bytes runs past the end of the file ({} bytes; truncated?)",
               path, header_len, file_size);
  file->data_start_ = 8 + header_len;
  const uint64_t data_size = file_size - file->data_start_;

  nlohmann::json doc =
      parse_header_json(path, reinterpret_cast<const char*>(bytes + 8), header_len);
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (it.key() == "__metadata__") {
      HARDKV_CHECK(it->is_object(), kBadFile, "{}: '__metadata__' must be an object, found {}",
                   path, it->type_name());
      for (auto m = it->begin(); m != it->end(); ++m) {
        HARDKV_CHECK(m->is_string(), kBadFile,
                     "{}: '__metadata__' value of '{}' must be a string, found {}", path, m.key(),
                     m->type_name());
        file->metadata_[m.key()] = m->get<std::string>();
      }
      continue;
    }
    TensorInfo info;
    parse_entry(path, it.key(), it.value(), data_size, &info);
    file->tensors_.push_back(std::move(info));
  }

  // Overlap check: sorted by start, each non-empty tensor must begin at or after the end of the
  // previous non-empty one.
  std::vector<const TensorInfo*> by_offset;
  for (const TensorInfo& t : file->tensors_) {
    if (t.nbytes > 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->offset < b->offset;
  });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo* prev = by_offset[i - 1];
    const TensorInfo* cur = by_offset[i];
    HARDKV_CHECK(cur->offset >= prev->offset + prev->nbytes, kBadFile,
                 "{}: tensors '{}' (bytes [{}, {})) and '{}' (bytes [{}, {})) overlap", path,
                 prev->name, prev->offset, prev->offset + prev->nbytes, cur->name, cur->offset,
                 cur->offset + cur->nbytes);
  }
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(map_, map_size_);
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  for (const TensorInfo& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Tensor SafetensorsFile::view(const TensorInfo& info) const {
  HARDKV_ASSERT(info.offset + info.nbytes <= map_size_ - data_start_);
  // The mapping is read-only: writes through the returned tensor fault.
  char* data = static_cast<char*>(map_) + data_start_ + info.offset;
  const size_t align = dtype_size(info.dtype);
  if (reinterpret_cast<uintptr_t>(data) % align != 0) {
    // Other writers may place a tensor at an offset that is not a multiple of its element size;
    // typed access would then be misaligned, so hand out an aligned copy instead.
    Tensor copy = Tensor::empty(info.dtype, info.shape);
    std::memcpy(copy.data(), data, info.nbytes);
    return copy;
  }
  std::shared_ptr<const SafetensorsFile> self = self_.lock();
  HARDKV_ASSERT(self != nullptr);
  return Tensor::view(data, info.dtype, info.shape, Device::kCPU,
                      std::shared_ptr<void>(self, const_cast<SafetensorsFile*>(self.get())));
}

}  // namespace hardkv
