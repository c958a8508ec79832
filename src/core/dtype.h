// Element types of tensors and checkpoint files, with bf16/fp16 <-> fp32 conversion on the host.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace hardkv {

enum class DType { kF32, kF16, kBF16, kI32, kI64, kU8, kBool };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);  // "F32", "BF16", ... as in safetensors headers
// Parses a safetensors dtype string; returns false for names hardkv does not read.
bool dtype_from_safetensors(std::string_view name, DType* out);

// bf16: the upper 16 bits of an IEEE fp32; rounding to nearest even, NaN kept quiet.
inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// Converts n elements of `src_dtype` (F32, F16 or BF16) to fp32.
void convert_to_f32(const void* src, DType src_dtype, float* dst, size_t n);
// Converts n fp32 elements to `dst_dtype` (F32, F16 or BF16).
void convert_from_f32(const float* src, void* dst, DType dst_dtype, size_t n);

}  // namespace hardkv
