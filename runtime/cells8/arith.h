// The arithmetic of edgernn's int8 kernels: rounding, exp and the gates, the integer product.
// Plain IEEE operations in a fixed order (setup.py turns off fused multiply-add), so every CPU
// computes the same bits; integer sums are exact.
#pragma once
#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define EDGERNN_X86 1
#endif

// The element-wise helpers are always inlined, so that the loops calling them vectorise.
#define EDGERNN_INLINE inline __attribute__((always_inline))

namespace edgernn {

constexpr int kZero = 128;                   // 8-bit values are stored u8 around 128
constexpr float kActScale = 1.0f / 127.0f;   // a bounded activation in [-1, 1] -> 1..255

// Round to nearest, ties to even (what QuantizeLinear does), for |x| < 2^22: adding and taking
// away 1.5 * 2^23 leaves the rounded value, in plain float arithmetic that vectorises.
EDGERNN_INLINE float round_even(float x) { return (x + 12582912.0f) - 12582912.0f; }

// QuantizeLinear(v, 1/127, 128) - 128: a bounded activation in 8 bits, minus its zero point.
EDGERNN_INLINE int8_t quantize(float v) {
  float q = round_even(v / kActScale);
  return int8_t(q < -128.0f ? -128.0f : (q > 127.0f ? 127.0f : q));
}

// exp(x) for x in [-87, 88]: 2^n * p(r), r = x - n ln2 in [-ln2/2, ln2/2], p the degree-7
// Taylor polynomial (relative error < 2e-8 there), 2^n built from its bits.
EDGERNN_INLINE float exp_approx(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  float n = round_even(x * 1.44269504f);
  float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;    // ln2 in two parts, the first exact
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * __builtin_bit_cast(float, (int32_t(n) + 127) << 23);
}

EDGERNN_INLINE float sigmoid(float x) { return 1.0f / (1.0f + exp_approx(-x)); }
EDGERNN_INLINE float tanh_approx(float x) { return 2.0f / (1.0f + exp_approx(-2.0f * x)) - 1.0f; }

// acc[j] = sum_i q[i] * (w[j][i] - 128): q an activation in 8 bits minus 128, w rows of u8.
inline void product_plain(const int8_t* q, const uint8_t* w, int64_t rows, int64_t k,
                          int32_t* acc) {
  for (int64_t j = 0; j < rows; ++j) {
    const uint8_t* wj = w + j * k;
    int32_t sum = 0;
    for (int64_t i = 0; i < k; ++i) sum += int32_t(q[i]) * (int32_t(wj[i]) - kZero);
    acc[j] = sum;
  }
}

#ifdef EDGERNN_X86
// The same sums with AVX2, 32 products an instruction: |q| (u8) times sign(q) * (w - 128) (s8)
// in VPMADDUBSW, whose pairs stay within 2 * 128 * 127 < 2^15, so nothing saturates.
__attribute__((target("avx2"))) inline int32_t total(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1)));
}

__attribute__((target("avx2"))) inline __m256i dot32(__m256i qa, __m256i qs, const uint8_t* w) {
  const __m256i flip = _mm256_set1_epi8(char(0x80)), ones = _mm256_set1_epi16(1);
  __m256i ws = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)), flip);
  return _mm256_madd_epi16(_mm256_maddubs_epi16(qa, _mm256_sign_epi8(ws, qs)), ones);
}

// Four rows' sums at once: (total(s0), ..., total(s3)) in 5 instructions where four separate
// horizontal sums take 28.
__attribute__((target("avx2"))) inline __m128i total4(__m256i s0, __m256i s1, __m256i s2,
                                                      __m256i s3) {
  const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(s0, s1), _mm256_hadd_epi32(s2, s3));
  return _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
}

__attribute__((target("avx2")))
inline void product_avx2(const int8_t* q, const uint8_t* w, int64_t rows, int64_t k,
                         int32_t* acc) {
  const int64_t body = k & ~int64_t(31);
  int64_t j = 0;
  for (; j + 4 <= rows; j += 4) {           // four rows of w share each load of q (eight run
    const uint8_t* w0 = w + j * k;          // out of registers and are slower)
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    for (int64_t i = 0; i < body; i += 32) {
      const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + i));
      const __m256i qa = _mm256_abs_epi8(qs);
      s0 = _mm256_add_epi32(s0, dot32(qa, qs, w0 + i));
      s1 = _mm256_add_epi32(s1, dot32(qa, qs, w0 + k + i));
      s2 = _mm256_add_epi32(s2, dot32(qa, qs, w0 + 2 * k + i));
      s3 = _mm256_add_epi32(s3, dot32(qa, qs, w0 + 3 * k + i));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(acc + j), total4(s0, s1, s2, s3));
    for (int64_t i = body; i < k; ++i)
      for (int r = 0; r < 4; ++r) acc[j + r] += int32_t(q[i]) * (int32_t(w0[r * k + i]) - kZero);
  }
  for (; j < rows; ++j) {                               // the last rows, one at a time
    const uint8_t* wj = w + j * k;
    __m256i s0 = _mm256_setzero_si256();
    for (int64_t i = 0; i < body; i += 32) {
      const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + i));
      s0 = _mm256_add_epi32(s0, dot32(_mm256_abs_epi8(qs), qs, wj + i));
    }
    acc[j] = total(s0);
    for (int64_t i = body; i < k; ++i) acc[j] += int32_t(q[i]) * (int32_t(wj[i]) - kZero);
  }
}

inline bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}
#endif

inline void product(const int8_t* q, const uint8_t* w, int64_t rows, int64_t k, int32_t* acc) {
#ifdef EDGERNN_X86
  if (has_avx2()) return product_avx2(q, w, rows, k, acc);
#endif
  product_plain(q, w, rows, k, acc);
}

}  // namespace edgernn
