// The float products of edgernn's kernels (a frame's in fp32, and a float cell's): each output a
// chain of fused multiply-adds in k's order from 0, so every path, and every grouping of rows and
// columns, gives the same bits (fmaf rounds once wherever it runs; ARM64 has it as an
// instruction, x86 takes FMA3 on the AVX2 path, which every AVX2 CPU from Intel and AMD has).
#pragma once
#include <stdint.h>

#include "product.h"

namespace edgernn {

#ifdef EDGERNN_X86
// out[j] = sum_k x[k] w[k][j] as fused multiply-adds, k in order from 0: eight columns a
// vector, 64 columns in registers through k. A fused multiply-add rounds once, on every CPU, so
// this equals float_product_plain bit for bit.
// ``stride``: W's row length (G when the product takes all its columns).
__attribute__((target("avx2,fma"))) inline void float_product_fma(const float* x, const float* w,
                                                                  int64_t I, int64_t G,
                                                                  float* out, int64_t stride) {
  int64_t j0 = 0;
  for (; j0 + 64 <= G; j0 += 64) {
    __m256 s[8];
    for (int u = 0; u < 8; ++u) s[u] = _mm256_setzero_ps();
    for (int64_t k = 0; k < I; ++k) {
      const __m256 xk = _mm256_broadcast_ss(x + k);
      const float* wk = w + k * stride + j0;
      for (int u = 0; u < 8; ++u) s[u] = _mm256_fmadd_ps(xk, _mm256_loadu_ps(wk + 8 * u), s[u]);
    }
    for (int u = 0; u < 8; ++u) _mm256_storeu_ps(out + j0 + 8 * u, s[u]);
  }
  for (; j0 + 8 <= G; j0 += 8) {
    __m256 s = _mm256_setzero_ps();
    for (int64_t k = 0; k < I; ++k)
      s = _mm256_fmadd_ps(_mm256_broadcast_ss(x + k), _mm256_loadu_ps(w + k * stride + j0), s);
    _mm256_storeu_ps(out + j0, s);
  }
  for (; j0 < G; ++j0) {
    float s = 0.0f;
    for (int64_t k = 0; k < I; ++k) s = __builtin_fmaf(x[k], w[k * stride + j0], s);
    out[j0] = s;
  }
}

// Two rows against one pass over W: 32 columns of each row in registers through k. Each sum is
// the same chain of fused multiply-adds as one row's, so the bits are the same.
__attribute__((target("avx2,fma"))) inline void float_product_fma2(const float* x0,
                                                                   const float* x1,
                                                                   const float* w, int64_t I,
                                                                   int64_t G, float* out0,
                                                                   float* out1, int64_t stride) {
  int64_t j0 = 0;
  for (; j0 + 32 <= G; j0 += 32) {
    __m256 a[4], b[4];
    for (int u = 0; u < 4; ++u) a[u] = b[u] = _mm256_setzero_ps();
    for (int64_t k = 0; k < I; ++k) {
      const __m256 xa = _mm256_broadcast_ss(x0 + k), xb = _mm256_broadcast_ss(x1 + k);
      const float* wk = w + k * stride + j0;
      for (int u = 0; u < 4; ++u) {
        const __m256 wv = _mm256_loadu_ps(wk + 8 * u);
        a[u] = _mm256_fmadd_ps(xa, wv, a[u]);
        b[u] = _mm256_fmadd_ps(xb, wv, b[u]);
      }
    }
    for (int u = 0; u < 4; ++u) {
      _mm256_storeu_ps(out0 + j0 + 8 * u, a[u]);
      _mm256_storeu_ps(out1 + j0 + 8 * u, b[u]);
    }
  }
  if (j0 < G) {                                       // the last columns: one row at a time
    float_product_fma(x0, w + j0, I, G - j0, out0 + j0, stride);
    float_product_fma(x1, w + j0, I, G - j0, out1 + j0, stride);
  }
}

// Six rows against one panel of W (panels(), below): 6 x 16 sums in twelve registers through k
// (the most AVX2's sixteen hold beside the panel's two vectors and a broadcast), each k's 16
// weights one 64-byte read in address order, shared by the six rows. Rows past ``rows`` repeat
// the last (computed again, stored once); only ``cols`` columns are stored.
constexpr int kPanelRows = 6;
__attribute__((target("avx2,fma"))) inline void panel_fma6(const float* const* x, int rows,
                                                          const float* panel, int64_t I,
                                                          float* const* out, int64_t cols) {
  // named accumulators: in an array, the compiler kept them on the stack
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0;
  __m256 d0 = a0, d1 = a0, e0 = a0, e1 = a0, f0 = a0, f1 = a0;
  const float* xs[kPanelRows];
  for (int r = 0; r < kPanelRows; ++r) xs[r] = x[r < rows ? r : rows - 1];
  const float *xa = xs[0], *xb = xs[1], *xc = xs[2], *xd = xs[3], *xe = xs[4], *xf = xs[5];
  for (int64_t k = 0; k < I; ++k) {
    const __m256 w0 = _mm256_loadu_ps(panel + 16 * k), w1 = _mm256_loadu_ps(panel + 16 * k + 8);
    __m256 v = _mm256_broadcast_ss(xa + k);
    a0 = _mm256_fmadd_ps(v, w0, a0);
    a1 = _mm256_fmadd_ps(v, w1, a1);
    v = _mm256_broadcast_ss(xb + k);
    b0 = _mm256_fmadd_ps(v, w0, b0);
    b1 = _mm256_fmadd_ps(v, w1, b1);
    v = _mm256_broadcast_ss(xc + k);
    c0 = _mm256_fmadd_ps(v, w0, c0);
    c1 = _mm256_fmadd_ps(v, w1, c1);
    v = _mm256_broadcast_ss(xd + k);
    d0 = _mm256_fmadd_ps(v, w0, d0);
    d1 = _mm256_fmadd_ps(v, w1, d1);
    v = _mm256_broadcast_ss(xe + k);
    e0 = _mm256_fmadd_ps(v, w0, e0);
    e1 = _mm256_fmadd_ps(v, w1, e1);
    v = _mm256_broadcast_ss(xf + k);
    f0 = _mm256_fmadd_ps(v, w0, f0);
    f1 = _mm256_fmadd_ps(v, w1, f1);
  }
  const __m256 sums[kPanelRows][2] = {{a0, a1}, {b0, b1}, {c0, c1}, {d0, d1}, {e0, e1},
                                      {f0, f1}};
  for (int r = 0; r < rows; ++r) {
    alignas(32) float sum[16];
    _mm256_store_ps(sum, sums[r][0]);
    _mm256_store_ps(sum + 8, sums[r][1]);
    for (int64_t j = 0; j < cols; ++j) out[r][j] = sum[j];
  }
}

#endif

// W (I x G) as panels of 16 columns, one after another: panel p holds W[k][16p .. 16p + 15] for
// k = 0 .. I - 1 (columns past G are 0), so a block of rows reads each panel in address order.
constexpr int64_t kPanel = 16;
inline int64_t panel_floats(int64_t I, int64_t G) { return (G + kPanel - 1) / kPanel * kPanel * I; }
inline void pack_panels(const float* w, int64_t I, int64_t G, float* out) {
  for (int64_t p = 0; p * kPanel < G; ++p)
    for (int64_t k = 0; k < I; ++k)
      for (int64_t j = 0; j < kPanel; ++j) {
        const int64_t c = p * kPanel + j;
        out[(p * I + k) * kPanel + j] = c < G ? w[k * G + c] : 0.0f;
      }
}

// out[j] = sum_k x[k] w[k][j] (W: I x G floats), each sum a chain of fused multiply-adds in k's
// order from 0, so every path gives the same bits (fmaf rounds once wherever it runs; ARM64 has
// it as an instruction, x86 takes FMA3 on the AVX2 path). In blocks of 64 columns. ``stride``:
// W's row length (G when the product takes all its columns).
inline void float_product_plain(const float* __restrict x, const float* __restrict w, int64_t I,
                                int64_t G, float* __restrict out, int64_t stride) {
  constexpr int64_t kBlock = 64;
  for (int64_t j0 = 0; j0 < G; j0 += kBlock) {
    const int64_t n = G - j0 < kBlock ? G - j0 : kBlock;
    float sum[kBlock] = {};
    for (int64_t k = 0; k < I; ++k) {
      const float xk = x[k];
      const float* __restrict wk = w + k * stride + j0;
      for (int64_t j = 0; j < n; ++j) sum[j] = __builtin_fmaf(xk, wk[j], sum[j]);
    }
    for (int64_t j = 0; j < n; ++j) out[j0 + j] = sum[j];
  }
}

// ``n`` rows (1 or 2) x[r] into out[r]; a pair shares each pass over W where the path can.
inline void float_product(Path path, const float* const* x, const float* w, int64_t I,
                          int64_t G, float* const* out, int n, int64_t stride) {
#ifdef EDGERNN_X86
  if (path == AVX2 && n == 2)
    return float_product_fma2(x[0], x[1], w, I, G, out[0], out[1], stride);
  if (path == AVX2) return float_product_fma(x[0], w, I, G, out[0], stride);
#endif
  (void)path;
  for (int r = 0; r < n; ++r) float_product_plain(x[r], w, I, G, out[r], stride);
}

// ``rows`` rows of x (row r at x + r * x_stride) against W (I x G) into out (row r at
// out + r * out_stride), one block of W's columns at a time for all the rows: the block stays in
// the cache while the rows pass over it, so W comes from memory once a call, not once a row pair
// (a pool's fp32 step: the keyword LSTM's float weights, 870 KB, do not fit in L2). Each output
// is float_product's chain, so the bits do not depend on the rows or the blocks.
// With ``panels`` (W packed by pack_panels) on the AVX2 path and four rows or more, six rows
// share each read of a panel, and every block of six rows passes over one panel before the next
// (fewer rows keep the 64-column registers of float_product: one row has no other to share with).
inline void float_product_rows(Path path, const float* x, int64_t x_stride, int64_t rows,
                               const float* w, const float* panels, int64_t I, int64_t G,
                               float* out, int64_t out_stride) {
#ifdef EDGERNN_X86
  if (path == AVX2 && panels != nullptr && rows >= 4) {
    for (int64_t j0 = 0; j0 < G; j0 += kPanel) {
      const int64_t cols = G - j0 < kPanel ? G - j0 : kPanel;
      const float* panel = panels + j0 * I;
      for (int64_t r = 0; r < rows; r += kPanelRows) {
        const int n = rows - r >= kPanelRows ? kPanelRows : int(rows - r);
        const float* xs[kPanelRows];
        float* outs[kPanelRows];
        for (int i = 0; i < n; ++i) {
          xs[i] = x + (r + i) * x_stride;
          outs[i] = out + (r + i) * out_stride + j0;
        }
        panel_fma6(xs, n, panel, I, outs, cols);
      }
    }
    return;
  }
#endif
  (void)panels;
  constexpr int64_t kColumns = 64;
  for (int64_t j0 = 0; j0 < G; j0 += kColumns) {
    const int64_t cols = G - j0 < kColumns ? G - j0 : kColumns;
    for (int64_t r = 0; r < rows; r += 2) {
      const int n = rows - r >= 2 ? 2 : 1;
      const float* xs[2] = {x + r * x_stride, x + (r + n - 1) * x_stride};
      float* outs[2] = {out + r * out_stride + j0, out + (r + n - 1) * out_stride + j0};
      float_product(path, xs, w + j0, I, cols, outs, n, G);
    }
  }
}

}  // namespace edgernn
