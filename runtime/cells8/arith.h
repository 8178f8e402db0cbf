// The arithmetic of edgernn's int8 kernels: rounding, exp and the gates (the integer product is
// in product.h). Plain IEEE operations in a fixed order (setup.py turns off fused multiply-add),
// so every CPU computes the same bits. No float is converted to an integer out of range, whatever
// a model file holds: NaN and infinities give what ONNX Runtime's operators give.
#pragma once
#include <stdint.h>

// The element-wise helpers are always inlined, so that the loops calling them vectorise.
#define EDGERNN_INLINE inline __attribute__((always_inline))

namespace edgernn {

constexpr float kActScale = 1.0f / 127.0f;   // a bounded activation in [-1, 1] -> 1..255

// Round to nearest, ties to even (what QuantizeLinear does), for |x| < 2^22: adding and taking
// away 1.5 * 2^23 leaves the rounded value, in plain float arithmetic that vectorises.
EDGERNN_INLINE float round_even(float x) { return (x + 12582912.0f) - 12582912.0f; }

// QuantizeLinear(v, 1/127, 128) - 128: a bounded activation in 8 bits, minus its zero point.
// Saturating; NaN gives -128 (u8 0), as ONNX Runtime's QuantizeLinear does.
EDGERNN_INLINE int8_t quantize(float v) {
  float q = round_even(v / kActScale);
  return int8_t(q > -128.0f ? (q > 127.0f ? 127.0f : q) : -128.0f);
}

// exp(x) for x in [-87, 88]: 2^n * p(r), r = x - n ln2 in [-ln2/2, ln2/2], p the degree-7
// Taylor polynomial (relative error < 2e-8 there), 2^n built from its bits. NaN stays NaN (through
// r), while n is taken from a number, so the conversion to an integer is always in range.
EDGERNN_INLINE float exp_approx(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float finite = x == x ? x : 0.0f;
  float n = round_even(finite * 1.44269504f);
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

}  // namespace edgernn
