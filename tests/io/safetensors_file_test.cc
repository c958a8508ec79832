// SafetensorsFile: reading hand-built files, and one test per malformed-input case (each must end
// in an Error naming the file, the tensor where there is one, and the problem).
#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>

#include "io_test_util.h"

namespace hardkv {
namespace {

using test::expect_error;
using test::safetensors_bytes;
using test::TempDir;
using test::write_bytes;

// Writes a file with the given header and `data_bytes` bytes of data (byte i = i % 251).
std::string make_file(const TempDir& dir, const std::string& header, size_t data_bytes,
                      const std::string& name = "m.safetensors") {
  std::string data(data_bytes, '\0');
  for (size_t i = 0; i < data_bytes; ++i) data[i] = static_cast<char>(i % 251);
  const std::string path = dir.file(name);
  write_bytes(path, safetensors_bytes(header, data));
  return path;
}

void expect_bad(const std::string& path, const std::vector<std::string>& parts,
                ErrorKind kind = ErrorKind::kBadFile) {
  std::vector<std::string> all = parts;
  all.push_back(path);
  expect_error([&] { SafetensorsFile::open(path); }, kind, all);
}

TEST(SafetensorsFile, ReadsHandBuiltFile) {
  TempDir dir;
  // Two tensors: a F32 [2] holding 1.5 and -2.0, then a BF16 [3] holding 1, 2, -0.5.
  std::string data;
  const float f[2] = {1.5f, -2.0f};
  data.append(reinterpret_cast<const char*>(f), 8);
  const uint16_t b[3] = {0x3f80, 0x4000, 0xbf00};
  data.append(reinterpret_cast<const char*>(b), 6);
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]},)"
      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("e":{"dtype":"F32","shape":[0,4],"data_offsets":[14,14]}}   )";
  const std::string path = dir.file("ok.safetensors");
  write_bytes(path, safetensors_bytes(header, data));

  auto file = SafetensorsFile::open(path);
  EXPECT_EQ(file->path(), path);
  ASSERT_EQ(file->tensors().size(), 3u);
  EXPECT_EQ(file->metadata().at("format"), "pt");
  const TensorInfo* a = file->find("a");
  const TensorInfo* bi = file->find("b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(bi, nullptr);
  EXPECT_EQ(file->find("zzz"), nullptr);
  EXPECT_EQ(a->dtype, DType::kF32);
  EXPECT_EQ(a->shape, Shape({2}));
  EXPECT_EQ(a->offset, 0u);
  EXPECT_EQ(a->nbytes, 8u);
  Tensor ta = file->view(*a);
  EXPECT_EQ(ta.data_as<float>()[0], 1.5f);
  EXPECT_EQ(ta.data_as<float>()[1], -2.0f);
  Tensor tb = file->view(*bi);
  EXPECT_EQ(tb.dtype(), DType::kBF16);
  EXPECT_EQ(bf16_to_f32(tb.data_as<uint16_t>()[0]), 1.0f);
  EXPECT_EQ(bf16_to_f32(tb.data_as<uint16_t>()[1]), 2.0f);
  EXPECT_EQ(bf16_to_f32(tb.data_as<uint16_t>()[2]), -0.5f);
  EXPECT_EQ(file->view(*file->find("e")).numel(), 0);
}

TEST(SafetensorsFile, ViewKeepsMappingAlive) {
  TempDir dir;
  const float v = 3.25f;
  const std::string path = dir.file("alive.safetensors");
  write_bytes(path, safetensors_bytes(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                                      std::string(reinterpret_cast<const char*>(&v), 4)));
  Tensor t;
  {
    auto file = SafetensorsFile::open(path);
    t = file->view(*file->find("x"));
  }
  EXPECT_EQ(t.data_as<float>()[0], 3.25f);
}

TEST(SafetensorsFile, MisalignedTensorIsCopiedAligned) {
  TempDir dir;
  // A U8 [1] tensor first puts the F32 at data offset 1 (header padded to 8 bytes).
  std::string header =
      R"({"u":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"f":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  const float f[2] = {7.0f, -0.125f};
  std::string data(1, '\x2a');
  data.append(reinterpret_cast<const char*>(f), 8);
  const std::string path = dir.file("mis.safetensors");
  write_bytes(path, safetensors_bytes(header, data));
  auto file = SafetensorsFile::open(path);
  Tensor t = file->view(*file->find("f"));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % 4, 0u);
  EXPECT_EQ(t.data_as<float>()[0], 7.0f);
  EXPECT_EQ(t.data_as<float>()[1], -0.125f);
}

// ---- malformed inputs: one test each ----------------------------------------------------------

TEST(SafetensorsFileErrors, MissingFile) {
  TempDir dir;
  expect_bad(dir.file("nope.safetensors"), {"cannot open"});
}

TEST(SafetensorsFileErrors, ShorterThanEightBytes) {
  TempDir dir;
  const std::string path = dir.file("short.safetensors");
  write_bytes(path, std::string("\x05\x00\x00", 3));
  expect_bad(path, {"3 bytes", "shorter than the 8-byte header length"});
}

TEST(SafetensorsFileErrors, EmptyFile) {
  TempDir dir;
  const std::string path = dir.file("empty.safetensors");
  write_bytes(path, "");
  expect_bad(path, {"0 bytes", "shorter"});
}

TEST(SafetensorsFileErrors, HeaderLengthPastEndOfFile) {
  TempDir dir;
  const std::string path = dir.file("trunc.safetensors");
  write_bytes(path, safetensors_bytes("{}", "", 1000));
  expect_bad(path, {"header length 1000", "past the end of the file"});
}

TEST(SafetensorsFileErrors, HeaderLengthAbsurd) {
  TempDir dir;
  const std::string path = dir.file("huge.safetensors");
  write_bytes(path, safetensors_bytes("{}", "", uint64_t{1} << 62));
  expect_bad(path, {"header length", "exceeds the 100 MiB limit"});
}

TEST(SafetensorsFileErrors, GarbageHeaderJson) {
  TempDir dir;
  expect_bad(make_file(dir, "{\"a\": [1, 2", 0), {"header is not valid JSON"});
}

TEST(SafetensorsFileErrors, BinaryGarbageHeader) {
  TempDir dir;
  expect_bad(make_file(dir, std::string("\xff\xfe\x00\x01garbage", 11), 0),
             {"header is not valid JSON"});
}

TEST(SafetensorsFileErrors, HeaderNotAnObject) {
  TempDir dir;
  expect_bad(make_file(dir, "[1, 2, 3]", 0), {"header is not a JSON object", "array"});
}

TEST(SafetensorsFileErrors, EntryNotAnObject) {
  TempDir dir;
  expect_bad(make_file(dir, R"({"w": 5})", 0), {"tensor 'w'", "not a JSON object"});
}

TEST(SafetensorsFileErrors, EntryWithoutDtype) {
  TempDir dir;
  expect_bad(make_file(dir, R"({"w": {"shape": [2], "data_offsets": [0, 8]}})", 8),
             {"tensor 'w'", "no 'dtype'"});
}

TEST(SafetensorsFileErrors, EntryWithoutShape) {
  TempDir dir;
  expect_bad(make_file(dir, R"({"w": {"dtype": "F32", "data_offsets": [0, 8]}})", 8),
             {"tensor 'w'", "no 'shape'"});
}

TEST(SafetensorsFileErrors, EntryWithoutDataOffsets) {
  TempDir dir;
  expect_bad(make_file(dir, R"({"w": {"dtype": "F32", "shape": [2]}})", 8),
             {"tensor 'w'", "no 'data_offsets'"});
}

TEST(SafetensorsFileErrors, DtypeNotAString) {
  TempDir dir;
  expect_bad(make_file(dir, R"({"w": {"dtype": 4, "shape": [2], "data_offsets": [0, 8]}})", 8),
             {"tensor 'w'", "'dtype' must be a string"});
}

TEST(SafetensorsFileErrors, UnknownDtype) {
  TempDir dir;
  expect_bad(make_file(dir, R"({"w": {"dtype": "Q7", "shape": [2], "data_offsets": [0, 8]}})", 8),
             {"tensor 'w'", "unknown dtype 'Q7'"});
}

TEST(SafetensorsFileErrors, UnsupportedDtypeIsUnsupported) {
  TempDir dir;
  expect_bad(make_file(dir, R"({"w": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}})", 8),
             {"tensor 'w'", "F64", "does not read"}, ErrorKind::kUnsupported);
}

TEST(SafetensorsFileErrors, NegativeShape) {
  TempDir dir;
  expect_bad(
      make_file(dir, R"({"w": {"dtype": "F32", "shape": [-1, 2], "data_offsets": [0, 8]}})", 8),
      {"tensor 'w'", "not a non-negative integer"});
}

TEST(SafetensorsFileErrors, NonIntegerShape) {
  TempDir dir;
  expect_bad(
      make_file(dir, R"({"w": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 8]}})", 8),
      {"tensor 'w'", "not a non-negative integer"});
}

TEST(SafetensorsFileErrors, OverflowingShape) {
  TempDir dir;
  expect_bad(make_file(dir,
                       R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296],)"
                       R"( "data_offsets": [0, 8]}})",
                       8),
             {"tensor 'w'", "overflows"});
}

TEST(SafetensorsFileErrors, ShapeTimesDtypeOverflowsBytes) {
  TempDir dir;
  // 2^62 elements fit in u64, but x4 bytes does not.
  expect_bad(make_file(dir,
                       R"({"w": {"dtype": "F32", "shape": [4611686018427387904],)"
                       R"( "data_offsets": [0, 8]}})",
                       8),
             {"tensor 'w'", "overflows"});
}

TEST(SafetensorsFileErrors, OffsetsReversed) {
  TempDir dir;
  expect_bad(make_file(dir, R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", 8),
             {"tensor 'w'", "[8, 0]", "reversed"});
}

TEST(SafetensorsFileErrors, OffsetsPastEndOfData) {
  TempDir dir;
  expect_bad(
      make_file(dir, R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 8),
      {"tensor 'w'", "past the end of the data section", "8 bytes"});
}

TEST(SafetensorsFileErrors, OffsetsMalformed) {
  TempDir dir;
  expect_bad(make_file(dir, R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0]}})", 8),
             {"tensor 'w'", "'data_offsets' must be [begin, end]"});
  expect_bad(
      make_file(dir, R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": ["0", "8"]}})", 8),
      {"tensor 'w'", "'data_offsets' must be [begin, end]"});
}

TEST(SafetensorsFileErrors, ByteSizeDoesNotMatchDtypeTimesShape) {
  TempDir dir;
  expect_bad(make_file(dir, R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 16),
             {"tensor 'w'", "hold 8 bytes", "needs 12 bytes"});
}

TEST(SafetensorsFileErrors, OverlappingTensors) {
  TempDir dir;
  expect_bad(make_file(dir,
                       R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                       R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                       12),
             {"'a'", "'b'", "overlap"});
}

TEST(SafetensorsFileErrors, DuplicateTensorName) {
  TempDir dir;
  expect_bad(make_file(dir,
                       R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
                       R"( "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                       8),
             {"tensor 'a'", "twice"});
}

TEST(SafetensorsFileErrors, MetadataNotStrings) {
  TempDir dir;
  expect_bad(make_file(dir, R"({"__metadata__": {"format": 3}})", 0),
             {"__metadata__", "'format'", "must be a string"});
  expect_bad(make_file(dir, R"({"__metadata__": [1]})", 0), {"'__metadata__' must be an object"});
}

// Every proper prefix of a valid file (a truncated download) must be rejected as a bad file.
TEST(SafetensorsFileErrors, TruncatedAtEveryLength) {
  TempDir dir;
  const std::string good = safetensors_bytes(
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]}})",
      std::string(14, '\x11'));
  const std::string path = dir.file("t.safetensors");
  for (size_t len = 0; len < good.size(); ++len) {
    write_bytes(path, good.substr(0, len));
    expect_error([&] { SafetensorsFile::open(path); }, ErrorKind::kBadFile, {path});
  }
  write_bytes(path, good);
  EXPECT_EQ(SafetensorsFile::open(path)->tensors().size(), 2u);
}

// Corrupting any single header byte either still parses to a valid layout (e.g. a changed
// digit that stays consistent) or throws a hardkv::Error; it never crashes or throws otherwise.
TEST(SafetensorsFileErrors, CorruptedHeaderBytes) {
  TempDir dir;
  const std::string header =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]}})";
  const std::string data(14, '\x22');
  const std::string path = dir.file("c.safetensors");
  const char replacements[] = {'}', '{', '"', '9', '0', '-', ' ', ',', '[', '\xff', '\0'};
  int rejected = 0;
  for (size_t pos = 0; pos < header.size(); ++pos) {
    for (char r : replacements) {
      std::string h = header;
      h[pos] = r;
      write_bytes(path, safetensors_bytes(h, data));
      try {
        auto f = SafetensorsFile::open(path);
        for (const TensorInfo& t : f->tensors()) {
          ASSERT_LE(t.offset + t.nbytes, data.size());
          f->view(t);
        }
      } catch (const Error& e) {
        ++rejected;
        EXPECT_NE(e.message().find(path), std::string::npos) << e.message();
      } catch (const std::exception& e) {
        ADD_FAILURE() << "non-hardkv exception: " << e.what();
      }
    }
  }
  EXPECT_GT(rejected, 0);
}

TEST(SafetensorsFileErrors, DirectoryInsteadOfFile) {
  TempDir dir;
  expect_bad(dir.path(), {});
}

}  // namespace
}  // namespace hardkv
