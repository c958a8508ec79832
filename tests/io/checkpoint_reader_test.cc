// CheckpointReader: single-file and sharded checkpoints, and the errors of a broken index (missing
// shard, tensor in the wrong shard, malformed JSON), missing tensors, wrong shapes and dtypes.
#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "io_test_util.h"

namespace hardkv {
namespace {

using test::expect_error;
using test::TempDir;
using test::write_bytes;

Tensor filled(DType dtype, Shape shape, float value) {
  Tensor t = Tensor::empty(dtype, std::move(shape));
  if (dtype == DType::kF32) {
    for (int64_t i = 0; i < t.numel(); ++i) t.data_as<float>()[i] = value + i;
  }
  return t;
}

// Two shards: a.safetensors holds w1 [2, 3], b.safetensors holds w2 [4] and ids (I32 [2]).
void write_two_shards(const TempDir& dir) {
  write_safetensors(dir.file("a.safetensors"), {{"w1", filled(DType::kF32, {2, 3}, 10)}});
  write_safetensors(dir.file("b.safetensors"), {{"w2", filled(DType::kF32, {4}, 20)},
                                                {"ids", filled(DType::kI32, {2}, 0)}});
}

const char* kGoodIndex = R"({"metadata": {"total_size": 48},
  "weight_map": {"w1": "a.safetensors", "w2": "b.safetensors", "ids": "b.safetensors"}})";

TEST(CheckpointReader, SingleFile) {
  TempDir dir;
  write_safetensors(dir.file("model.safetensors"), {{"x", filled(DType::kF32, {3}, 1)},
                                                    {"y", filled(DType::kF32, {1, 2}, 5)}});
  CheckpointReader r = CheckpointReader::open(dir.path());
  EXPECT_TRUE(r.has("x"));
  EXPECT_FALSE(r.has("z"));
  EXPECT_EQ(r.names(), std::vector<std::string>({"x", "y"}));
  EXPECT_EQ(r.file_of("y"), dir.file("model.safetensors"));
  Tensor y = r.get_checked("y", {1, 2});
  EXPECT_EQ(y.data_as<float>()[1], 6.0f);
}

TEST(CheckpointReader, Sharded) {
  TempDir dir;
  write_two_shards(dir);
  write_bytes(dir.file("model.safetensors.index.json"), kGoodIndex);
  CheckpointReader r = CheckpointReader::open(dir.path());
  EXPECT_EQ(r.names().size(), 3u);
  EXPECT_EQ(r.file_of("w1"), dir.file("a.safetensors"));
  EXPECT_EQ(r.file_of("w2"), dir.file("b.safetensors"));
  EXPECT_EQ(r.get_checked("w1", {2, 3}).data_as<float>()[5], 15.0f);
  EXPECT_EQ(r.get_checked("w2", {4}).data_as<float>()[0], 20.0f);
  EXPECT_EQ(r.get("ids").dtype(), DType::kI32);
}

TEST(CheckpointReader, IndexWinsOverSingleFile) {
  TempDir dir;
  write_two_shards(dir);
  write_bytes(dir.file("model.safetensors.index.json"), kGoodIndex);
  write_safetensors(dir.file("model.safetensors"), {{"other", filled(DType::kF32, {1}, 0)}});
  EXPECT_FALSE(CheckpointReader::open(dir.path()).has("other"));
}

TEST(CheckpointReaderErrors, MissingDirectory) {
  TempDir dir;
  const std::string missing = dir.file("nothing_here");
  expect_error([&] { CheckpointReader::open(missing); }, ErrorKind::kBadFile,
               {missing, "does not exist"});
}

TEST(CheckpointReaderErrors, NoWeightsInDirectory) {
  TempDir dir;
  expect_error([&] { CheckpointReader::open(dir.path()); }, ErrorKind::kBadFile,
               {dir.path(), "no model.safetensors or model.safetensors.index.json"});
}

TEST(CheckpointReaderErrors, MissingShard) {
  TempDir dir;
  write_safetensors(dir.file("a.safetensors"), {{"w1", filled(DType::kF32, {2, 3}, 10)}});
  write_bytes(dir.file("model.safetensors.index.json"),
              R"({"weight_map": {"w1": "a.safetensors", "w2": "b.safetensors"}})");
  expect_error([&] { CheckpointReader::open(dir.path()); }, ErrorKind::kBadFile,
               {"model.safetensors.index.json", "'w2'", "b.safetensors", "does not exist"});
}

TEST(CheckpointReaderErrors, TensorInWrongShard) {
  TempDir dir;
  write_two_shards(dir);
  write_bytes(dir.file("model.safetensors.index.json"),
              R"({"weight_map": {"w1": "b.safetensors", "w2": "b.safetensors"}})");
  expect_error([&] { CheckpointReader::open(dir.path()); }, ErrorKind::kBadFile,
               {dir.file("b.safetensors"), "'w1'", "does not hold it"});
}

TEST(CheckpointReaderErrors, CorruptShard) {
  TempDir dir;
  write_two_shards(dir);
  write_bytes(dir.file("b.safetensors"), "xyz");
  write_bytes(dir.file("model.safetensors.index.json"), kGoodIndex);
  expect_error([&] { CheckpointReader::open(dir.path()); }, ErrorKind::kBadFile,
               {dir.file("b.safetensors"), "shorter"});
}

TEST(CheckpointReaderErrors, IndexGarbageJson) {
  TempDir dir;
  write_two_shards(dir);
  write_bytes(dir.file("model.safetensors.index.json"), "{\"weight_map\": {");
  expect_error([&] { CheckpointReader::open(dir.path()); }, ErrorKind::kBadFile,
               {"model.safetensors.index.json", "not valid JSON"});
}

TEST(CheckpointReaderErrors, IndexMalformed) {
  TempDir dir;
  write_two_shards(dir);
  const std::string index = dir.file("model.safetensors.index.json");
  struct Case {
    const char* json;
    const char* expect;
  };
  const Case cases[] = {
      {"[1]", "not a JSON object"},
      {R"({"metadata": {}})", "no 'weight_map'"},
      {R"({"weight_map": ["a.safetensors"]})", "'weight_map' must be an object"},
      {R"({"weight_map": {"w1": 3}})", "shard must be a file name string"},
      {R"({"weight_map": {"w1": "../a.safetensors"}})", "not a plain file name"},
      {R"({"weight_map": {}})", "'weight_map' is empty"},
  };
  for (const Case& c : cases) {
    write_bytes(index, c.json);
    expect_error([&] { CheckpointReader::open(dir.path()); }, ErrorKind::kBadFile,
                 {index, c.expect});
  }
}

TEST(CheckpointReaderErrors, MissingTensor) {
  TempDir dir;
  write_safetensors(dir.file("model.safetensors"), {{"x", filled(DType::kF32, {3}, 1)}});
  CheckpointReader r = CheckpointReader::open(dir.path());
  expect_error([&] { r.get("model.norm.weight"); }, ErrorKind::kBadFile,
               {dir.path(), "'model.norm.weight'", "no tensor"});
  expect_error([&] { r.get_checked("lm_head.weight", {3}); }, ErrorKind::kBadFile,
               {"'lm_head.weight'", "no tensor"});
}

TEST(CheckpointReaderErrors, WrongShape) {
  TempDir dir;
  write_safetensors(dir.file("model.safetensors"), {{"x", filled(DType::kF32, {3, 2}, 1)}});
  CheckpointReader r = CheckpointReader::open(dir.path());
  expect_error([&] { r.get_checked("x", {2, 3}); }, ErrorKind::kBadFile,
               {dir.file("model.safetensors"), "'x'", "shape [3, 2]", "expected [2, 3]"});
}

TEST(CheckpointReaderErrors, WrongDtype) {
  TempDir dir;
  write_safetensors(dir.file("model.safetensors"), {{"x", filled(DType::kI64, {3}, 1)}});
  CheckpointReader r = CheckpointReader::open(dir.path());
  expect_error([&] { r.get_checked("x", {3}); }, ErrorKind::kBadFile,
               {dir.file("model.safetensors"), "'x'", "dtype I64", "float"});
}

}  // namespace
}  // namespace hardkv
