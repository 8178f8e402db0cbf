// The products of edgernn's kernels, on each path the CPU offers. The integer product:
//
//   acc[j] = sum_i q[i] * s[j][i]     q: an activation in 8 bits, s: a weight row, centred
//
// s = w - 128 for the file's u8 weights w (the kernels centre them once, at load). Every path
// gives the exact integer sums, for every weight byte 0..255 and every activation byte, so they
// are bit-identical to each other and to the model's plain-ONNX function (MatMulInteger). Two
// rows of activations (a pool's) can share one pass over the weights: their sums are the same
// integers. The path is chosen at run time from what the CPU has (x86-64: AVX2; ARM64: the
// dot-product instructions of ARMv8.2, the 8-bit matrix multiply of ARMv8.6);
// EDGERNN_KERNEL_PATH names a lower one (tests force each
// in turn, and so can a user who suspects one). The float product is in floats.h.
#pragma once
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define EDGERNN_X86 1
#endif
#if defined(__aarch64__) && defined(__GNUC__) && defined(__linux__)
#include <arm_neon.h>
#include <sys/auxv.h>
#define EDGERNN_ARM64 1
#endif

namespace edgernn {

constexpr int kWeightZero = 128;             // u8 weights are stored around 128

// In order: a forced path is one below the best, never above it. A CPU has portable and one
// family of the others (x86: avx2; ARM64: neon-dotprod, and neon-i8mm on cores with ARMv8.6's
// 8-bit matrix multiply, which has dotprod too).
enum Path { PORTABLE = 0, AVX2 = 1, NEON_DOT = 2, NEON_I8MM = 3, kPaths = 4 };
constexpr const char* kPathNames[kPaths] = {"portable", "avx2", "neon-dotprod", "neon-i8mm"};

inline void product_plain(const int8_t* q, const int8_t* w, int64_t rows, int64_t k,
                          int32_t* acc) {
  for (int64_t j = 0; j < rows; ++j) {
    const int8_t* wj = w + j * k;
    int32_t sum = 0;
    for (int64_t i = 0; i < k; ++i) sum += int32_t(q[i]) * int32_t(wj[i]);
    acc[j] = sum;
  }
}

// The file's u8 weights centred: w - 128 as s8 (a byte 0 becomes -128).
inline void centre(const uint8_t* w, int64_t n, int8_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = int8_t(int32_t(w[i]) - kWeightZero);
}

#ifdef EDGERNN_X86
// AVX2 multiplies u8 by s8 in pairs (VPMADDUBSW) and saturates a pair's sum at 2^15 - 1. Two
// forms keep every pair below that bound:
// - |q| (u8, up to 128) times sign(q) * s: exact unless s = -128 (a weight byte 0), which
//   VPSIGNB cannot negate. edgernn's own files never hold one (weights are clipped to 1..255),
//   so this form is the common one;
// - |s| (u8, up to 128) times sign(s) * q', with q' = max(q, -127): exact for every weight, and
//   the rows of q where q = -128 add their missing -s afterwards, one by one.
// Pairs stay within 2 * 128 * 127 = 32512 either way.
__attribute__((target("avx2"))) inline int32_t total(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1)));
}

// Four rows' sums at once: (total(s0), ..., total(s3)) in 5 instructions where four separate
// horizontal sums take 28.
__attribute__((target("avx2"))) inline __m128i total4(__m256i s0, __m256i s1, __m256i s2,
                                                      __m256i s3) {
  const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(s0, s1), _mm256_hadd_epi32(s2, s3));
  return _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
}

template <bool kAnyWeight>
struct Dot32 {
  __m256i a, s;                                   // the activation's two halves, loaded once
  __attribute__((target("avx2"))) inline explicit Dot32(const int8_t* q) {
    const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
    a = kAnyWeight ? _mm256_max_epi8(qs, _mm256_set1_epi8(-127)) : _mm256_abs_epi8(qs);
    s = qs;
  }
  __attribute__((target("avx2"))) inline __m256i operator()(__m256i ws) const {
    const __m256i pairs = kAnyWeight
        ? _mm256_maddubs_epi16(_mm256_abs_epi8(ws), _mm256_sign_epi8(a, ws))
        : _mm256_maddubs_epi16(a, _mm256_sign_epi8(ws, s));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
  }
};

__attribute__((target("avx2"))) inline __m256i load32(const int8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// The body's sums of ``n`` activation rows (1 or 2) against four weight rows at a time: each load
// of the weights serves every row of q (eight accumulators for two rows).
template <bool kAnyWeight, int n>
__attribute__((target("avx2"))) void body_avx2(const int8_t* const* q, const int8_t* w,
                                               int64_t rows, int64_t k, int32_t* const* acc) {
  const int64_t body = k & ~int64_t(31);
  int64_t j = 0;
  for (; j + 4 <= rows; j += 4) {
    const int8_t* w0 = w + j * k;
    __m256i s[n][4];
    for (int r = 0; r < n; ++r)
      for (int u = 0; u < 4; ++u) s[r][u] = _mm256_setzero_si256();
    for (int64_t i = 0; i < body; i += 32) {
      Dot32<kAnyWeight> dot0(q[0] + i);
      Dot32<kAnyWeight> dot1(q[n - 1] + i);
      for (int u = 0; u < 4; ++u) {
        const __m256i ws = load32(w0 + u * k + i);
        s[0][u] = _mm256_add_epi32(s[0][u], dot0(ws));
        if (n == 2) s[n - 1][u] = _mm256_add_epi32(s[n - 1][u], dot1(ws));
      }
    }
    for (int r = 0; r < n; ++r)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(acc[r] + j),
                       total4(s[r][0], s[r][1], s[r][2], s[r][3]));
  }
  for (; j < rows; ++j)                                 // the last rows, one at a time
    for (int r = 0; r < n; ++r) {
      __m256i s0 = _mm256_setzero_si256();
      for (int64_t i = 0; i < body; i += 32)
        s0 = _mm256_add_epi32(s0, Dot32<kAnyWeight>(q[r] + i)(load32(w + j * k + i)));
      acc[r][j] = total(s0);
    }
}

// The tail past the last 32 inputs, and (careful form) the body's activations -128, whose
// product the max with -127 left one short.
template <bool kAnyWeight>
inline void tail(const int8_t* q, const int8_t* w, int64_t rows, int64_t k, int32_t* acc) {
  const int64_t body = k & ~int64_t(31);
  for (int64_t i = kAnyWeight ? 0 : body; i < k; ++i) {
    if (i < body && q[i] != -128) continue;
    const int32_t qi = i < body ? -1 : q[i];            // in the body: -128 - (-127)
    for (int64_t j = 0; j < rows; ++j) acc[j] += qi * int32_t(w[j * k + i]);
  }
}

template <bool kAnyWeight, int n>
__attribute__((target("avx2"))) void product_avx2(const int8_t* const* q, const int8_t* w,
                                                  int64_t rows, int64_t k, int32_t* const* acc) {
  body_avx2<kAnyWeight, n>(q, w, rows, k, acc);
  for (int r = 0; r < n; ++r) tail<kAnyWeight>(q[r], w, rows, k, acc[r]);
}

// The AVX2 path also takes the float product's fused multiply-adds (FMA3): every AVX2 CPU from
// Intel and AMD has them.
inline bool cpu_has(Path p) {
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return p == PORTABLE || (p == AVX2 && avx2);
}
#elif defined(EDGERNN_ARM64)
// ARMv8.2's SDOT: four s8 x s8 products summed into each 32-bit lane, exactly (|sum| <= 4 *
// 128 * 128). Both factors are s8 here, q and the centred weight, so every byte is exact with no
// second form: 16 products an instruction, four rows sharing each load of q.
#define EDGERNN_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
EDGERNN_DOTPROD inline int8x16_t centred(const int8_t* w) { return vld1q_s8(w); }

EDGERNN_DOTPROD inline void product_dotprod(const int8_t* q, const int8_t* w, int64_t rows,
                                            int64_t k, int32_t* acc) {
  const int64_t body = k & ~int64_t(15);
  int64_t j = 0;
  for (; j + 4 <= rows; j += 4) {
    const int8_t* w0 = w + j * k;
    int32x4_t s0 = vdupq_n_s32(0), s1 = s0, s2 = s0, s3 = s0;
    for (int64_t i = 0; i < body; i += 16) {
      const int8x16_t qv = vld1q_s8(q + i);
      s0 = vdotq_s32(s0, qv, centred(w0 + i));
      s1 = vdotq_s32(s1, qv, centred(w0 + k + i));
      s2 = vdotq_s32(s2, qv, centred(w0 + 2 * k + i));
      s3 = vdotq_s32(s3, qv, centred(w0 + 3 * k + i));
    }
    acc[j] = vaddvq_s32(s0);
    acc[j + 1] = vaddvq_s32(s1);
    acc[j + 2] = vaddvq_s32(s2);
    acc[j + 3] = vaddvq_s32(s3);
  }
  for (; j < rows; ++j) {
    int32x4_t s0 = vdupq_n_s32(0);
    for (int64_t i = 0; i < body; i += 16)
      s0 = vdotq_s32(s0, vld1q_s8(q + i), centred(w + j * k + i));
    acc[j] = vaddvq_s32(s0);
  }
  for (int64_t i = body; i < k; ++i)                    // the tail
    for (j = 0; j < rows; ++j) acc[j] += int32_t(q[i]) * int32_t(w[j * k + i]);
}

// ARMv8.6's SMMLA: a 2x8 by 8x2 product of s8 into a 2x2 block of 32-bit sums, exactly (|sum|
// <= 8 * 128 * 128): two rows of a pool's activations against two weight rows at once, 32
// products an instruction. A row alone takes the dot-product path (SMMLA would waste half).
#define EDGERNN_I8MM __attribute__((target("arch=armv8.2-a+dotprod+i8mm")))
EDGERNN_I8MM inline void product_i8mm(const int8_t* q0, const int8_t* q1, const int8_t* w,
                                      int64_t rows, int64_t k, int32_t* acc0, int32_t* acc1) {
  const int64_t body = k & ~int64_t(7);
  int64_t j = 0;
  for (; j + 2 <= rows; j += 2) {
    const int8_t* wa = w + j * k;
    const int8_t* wb = wa + k;
    int32x4_t s = vdupq_n_s32(0);          // (q0.wa, q0.wb, q1.wa, q1.wb)
    for (int64_t i = 0; i < body; i += 8)
      s = vmmlaq_s32(s, vcombine_s8(vld1_s8(q0 + i), vld1_s8(q1 + i)),
                     vcombine_s8(vld1_s8(wa + i), vld1_s8(wb + i)));
    int32_t t[4];
    vst1q_s32(t, s);
    acc0[j] = t[0], acc0[j + 1] = t[1], acc1[j] = t[2], acc1[j + 1] = t[3];
  }
  for (; j < rows; ++j) {                               // an odd last row
    int32_t a = 0, b = 0;
    for (int64_t i = 0; i < body; ++i) a += int32_t(q0[i]) * w[j * k + i];
    for (int64_t i = 0; i < body; ++i) b += int32_t(q1[i]) * w[j * k + i];
    acc0[j] = a, acc1[j] = b;
  }
  for (int64_t i = body; i < k; ++i)                    // the tail
    for (j = 0; j < rows; ++j) {
      acc0[j] += int32_t(q0[i]) * int32_t(w[j * k + i]);
      acc1[j] += int32_t(q1[i]) * int32_t(w[j * k + i]);
    }
}

inline bool cpu_has(Path p) {
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1 << 13)
#endif
  static const bool dot = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
  static const bool mm = dot && (getauxval(AT_HWCAP2) & HWCAP2_I8MM) != 0;
  return p == PORTABLE || (p == NEON_DOT && dot) || (p == NEON_I8MM && mm);
}
#else
inline bool cpu_has(Path p) { return p == PORTABLE; }
#endif

// The best path this CPU has, or the one EDGERNN_KERNEL_PATH names if it is lower; read when a
// session registers the kernels (a name this CPU lacks, or no such name, leaves the best).
inline Path choose_path() {
  int best = kPaths - 1;
  while (!cpu_has(Path(best))) --best;
  const char* want = getenv("EDGERNN_KERNEL_PATH");
  for (int p = 0; want && p < best; ++p)
    if (strcmp(want, kPathNames[p]) == 0) return Path(p);
  return Path(best);
}

// ``any_weight``: the centred w may hold -128 (a file byte 0, which only a file edgernn did not
// write holds). ``n`` rows of activations q[r] (1 or 2) into acc[r].
inline void product(Path path, bool any_weight, const int8_t* const* q, const int8_t* w,
                    int64_t rows, int64_t k, int32_t* const* acc, int n) {
#ifdef EDGERNN_X86
  if (path == AVX2) {
    if (n == 2)
      return any_weight ? product_avx2<true, 2>(q, w, rows, k, acc)
                        : product_avx2<false, 2>(q, w, rows, k, acc);
    return any_weight ? product_avx2<true, 1>(q, w, rows, k, acc)
                      : product_avx2<false, 1>(q, w, rows, k, acc);
  }
#endif
  (void)any_weight;
#ifdef EDGERNN_ARM64
  if (path == NEON_I8MM && n == 2) return product_i8mm(q[0], q[1], w, rows, k, acc[0], acc[1]);
#endif
  for (int r = 0; r < n; ++r) {
#ifdef EDGERNN_ARM64
    if (path >= NEON_DOT) {
      product_dotprod(q[r], w, rows, k, acc[r]);
      continue;
    }
#endif
    product_plain(q[r], w, rows, k, acc[r]);
  }
  (void)path;
}

inline bool holds_zero(const uint8_t* w, int64_t n) { return memchr(w, 0, size_t(n)) != nullptr; }

}  // namespace edgernn
