// write_safetensors / SafetensorsWriter: round trips through the reader for every dtype, and the
// on-disk layout checked by parsing the header independently.
#include "io/safetensors_writer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "io_test_util.h"

namespace hardkv {
namespace {

using test::expect_error;
using test::read_bytes;
using test::TempDir;

// A tensor whose byte k is (k * 37 + salt) & 0xff.
Tensor patterned(DType dtype, Shape shape, int salt) {
  Tensor t = Tensor::empty(dtype, std::move(shape));
  auto* p = t.data_as<unsigned char>();
  for (size_t k = 0; k < t.nbytes(); ++k) p[k] = static_cast<unsigned char>((k * 37 + salt) & 0xff);
  return t;
}

TEST(SafetensorsWriter, RoundTripEveryDtype) {
  const DType dtypes[] = {DType::kF32, DType::kF16, DType::kBF16, DType::kI32,
                          DType::kI64, DType::kU8,  DType::kBool};
  TempDir dir;
  std::vector<std::pair<std::string, Tensor>> tensors;
  int salt = 0;
  for (DType d : dtypes) {
    tensors.emplace_back(std::string("t_") + dtype_name(d), patterned(d, {3, 5}, salt++));
  }
  tensors.emplace_back("scalar", patterned(DType::kF32, {}, 99));
  tensors.emplace_back("empty", Tensor::empty(DType::kF16, {0, 7}));
  const std::string path = dir.file("rt.safetensors");
  write_safetensors(path, tensors, {{"format", "pt"}, {"note", "x"}});

  auto file = SafetensorsFile::open(path);
  EXPECT_EQ(file->metadata().size(), 2u);
  EXPECT_EQ(file->metadata().at("note"), "x");
  ASSERT_EQ(file->tensors().size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    const TensorInfo* info = file->find(name);
    ASSERT_NE(info, nullptr) << name;
    EXPECT_EQ(info->dtype, t.dtype()) << name;
    EXPECT_EQ(info->shape, t.shape()) << name;
    Tensor back = file->view(*info);
    ASSERT_EQ(back.nbytes(), t.nbytes()) << name;
    if (t.nbytes() > 0) {
      EXPECT_EQ(std::memcmp(back.data(), t.data(), t.nbytes()), 0) << name;
    }
  }
}

TEST(SafetensorsWriter, LayoutMatchesFormat) {
  TempDir dir;
  const std::string path = dir.file("layout.safetensors");
  write_safetensors(path, {{"a", patterned(DType::kBF16, {3}, 1)},
                           {"b", patterned(DType::kF32, {2, 2}, 2)}});
  const std::string bytes = read_bytes(path);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ(n % 8, 0u) << "data section must start 8-byte aligned";
  ASSERT_EQ(bytes.size(), 8 + n + 6 + 16);
  nlohmann::json h = nlohmann::json::parse(bytes.substr(8, n));
  EXPECT_EQ(h["a"]["dtype"], "BF16");
  EXPECT_EQ(h["a"]["shape"], nlohmann::json({3}));
  EXPECT_EQ(h["a"]["data_offsets"], nlohmann::json({0, 6}));
  EXPECT_EQ(h["b"]["dtype"], "F32");
  EXPECT_EQ(h["b"]["data_offsets"], nlohmann::json({6, 22}));
  EXPECT_FALSE(h.contains("__metadata__"));
  // Tensor bytes follow the header verbatim.
  Tensor a = patterned(DType::kBF16, {3}, 1);
  EXPECT_EQ(bytes.substr(8 + n, 6), std::string(a.data_as<char>(), 6));
}

TEST(SafetensorsWriter, StreamingInChunks) {
  TempDir dir;
  const std::string path = dir.file("stream.safetensors");
  std::vector<TensorInfo> layout(2);
  layout[0].name = "x";
  layout[0].dtype = DType::kF32;
  layout[0].shape = {4};
  layout[1].name = "y";
  layout[1].dtype = DType::kU8;
  layout[1].shape = {3};
  SafetensorsWriter w(path, layout);
  EXPECT_EQ(w.tensors()[1].offset, 16u);
  const float xs[4] = {1, 2, 3, 4};
  const unsigned char ys[3] = {9, 8, 7};
  std::string all(reinterpret_cast<const char*>(xs), 16);
  all.append(reinterpret_cast<const char*>(ys), 3);
  w.append(all.data(), 5);  // chunks that straddle the tensor boundary
  w.append(all.data() + 5, 14);
  w.finish();
  EXPECT_EQ(read_bytes(path).size(), w.file_bytes());
  auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f->view(*f->find("x")).data_as<float>()[3], 4.0f);
  EXPECT_EQ(f->view(*f->find("y")).data_as<unsigned char>()[2], 7);
}

TEST(SafetensorsWriter, RejectsIncompleteOrMisuse) {
  TempDir dir;
  std::vector<TensorInfo> layout(1);
  layout[0].name = "x";
  layout[0].shape = {4};
  SafetensorsWriter w(dir.file("inc.safetensors"), layout);
  const float xs[4] = {};
  expect_error([&] { w.write("other", xs, 16); }, ErrorKind::kInternal, {"'other'", "order"});
  expect_error([&] { w.write("x", xs, 8); }, ErrorKind::kInternal, {"'x'", "16 bytes"});
  expect_error([&] { w.finish(); }, ErrorKind::kInternal, {"0 of 16"});
  expect_error([&] {
    write_safetensors(dir.file("dup.safetensors"),
                      {{"a", Tensor::empty(DType::kF32, {1})}, {"a", Tensor::empty(DType::kF32, {1})}});
  }, ErrorKind::kInvalidArgument, {"'a'", "twice"});
  expect_error([&] {
    write_safetensors(dir.path() + "/no/such/dir/x.safetensors",
                      {{"a", Tensor::empty(DType::kF32, {1})}});
  }, ErrorKind::kRuntime, {"cannot create"});
}

}  // namespace
}  // namespace hardkv
