// The kernel library's entry points for edgernn's own tools, called through ctypes with no ONNX
// Runtime session: the paths this CPU has, the one sessions get, the integer product on a named
// path (tests hold every path to the exact sums) and its peak rate (the benchmarks' roofline).
// Included by cells8.cc (one translation unit).
#pragma once
#include <string.h>

#include <chrono>
#include <string>
#include <vector>

#include "checks.h"
#include "floats.h"
#include "product.h"

namespace edgernn {
inline const char* path_names_here() {
  static std::string names;
  if (names.empty())
    for (int p = 0; p < kPaths; ++p)
      if (cpu_has(Path(p))) names += std::string(names.empty() ? "" : ",") + kPathNames[p];
  return names.c_str();
}

// The path ``name`` names, if this CPU has it.
inline bool named_path(const char* name, Path* out) {
  for (int p = 0; p < kPaths; ++p)
    if (strcmp(name, kPathNames[p]) == 0 && cpu_has(Path(p))) {
      *out = Path(p);
      return true;
    }
  return false;
}
}  // namespace edgernn

// For edgernn's own tools (ctypes; no ONNX Runtime needed): the product paths this CPU has, the
// one sessions registered now get, and the product itself on a named path, so that tests hold
// every path to the exact integer sums.
extern "C" __attribute__((visibility("default"))) const char* edgernn_cells8_paths() {
  return edgernn::path_names_here();
}

extern "C" __attribute__((visibility("default"))) const char* edgernn_cells8_path() {
  return kPathNames[choose_path()];
}

// n rows of activations q (n x k) against w (rows x k, u8 around 128) into acc (n x rows), in
// pairs as a pool's rows go.
extern "C" __attribute__((visibility("default")))
int edgernn_cells8_product(const char* path, const int8_t* q, int64_t n, const uint8_t* w,
                           int64_t rows, int64_t k, int32_t* acc) {
  Path p;
  if (!named_path(path, &p) || rows < 0 || k < 0 || n < 0 || k > kMaxInputs ||
      rows > INT32_MAX || n > INT32_MAX)
    return -1;
  std::vector<int8_t> s(size_t(rows * k));
  centre(w, rows * k, s.data());
  const bool any = holds_zero(w, rows * k);
  for (int64_t r = 0; r < n; r += 2) {
    const int64_t r1 = r + 1 < n ? r + 1 : r;
    const int8_t* qs[2] = {q + r * k, q + r1 * k};
    int32_t* accs[2] = {acc + r * rows, acc + r1 * rows};
    product(p, any, qs, s.data(), rows, k, accs, r + 1 < n ? 2 : 1);
  }
  return 0;
}

// MACs per second of the integer product on a named path, one activation row against ``rows``
// x ``k`` weights, ``calls`` times, timed here (no call overhead): the peak rate the benchmarks'
// roofline divides by. -1 for a path this CPU lacks or sizes out of range.
extern "C" __attribute__((visibility("default")))
double edgernn_cells8_rate(const char* path, int64_t rows, int64_t k, int64_t calls) {
  Path p;
  if (!named_path(path, &p) || rows <= 0 || k <= 0 || k > kMaxInputs || rows > (1 << 16) ||
      calls <= 0)
    return -1;
  std::vector<int8_t> w(size_t(rows * k)), q{std::vector<int8_t>(size_t(k))};
  for (size_t i = 0; i < w.size(); ++i) w[i] = int8_t(int(i * 37 % 255) - 127);
  for (size_t i = 0; i < q.size(); ++i) q[i] = int8_t(int(i * 11 % 256) - 128);
  std::vector<int32_t> acc{std::vector<int32_t>(size_t(rows))};
  const int8_t* qs = q.data();
  int32_t* accs = acc.data();
  const auto start = std::chrono::steady_clock::now();
  for (int64_t c = 0; c < calls; ++c) product(p, false, &qs, w.data(), rows, k, &accs, 1);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
                       .count();
  return s > 0 ? double(rows * k) * double(calls) / s : -1;
}

// n rows of frames x (n x I floats) against W (I x G) into out (n x G), in pairs as a pool's rows
// go: tests hold every path to the same bits.
extern "C" __attribute__((visibility("default")))
int edgernn_cells8_float_product(const char* path, const float* x, int64_t n, const float* w,
                                 int64_t I, int64_t G, float* out) {
  Path p;
  if (!named_path(path, &p) || n < 0 || I < 0 || G < 0 || I > kMaxInputs || G > kMaxInputs)
    return -1;
  for (int64_t r = 0; r < n; r += 2) {
    const int64_t r1 = r + 1 < n ? r + 1 : r;
    const float* xs[2] = {x + r * I, x + r1 * I};
    float* outs[2] = {out + r * G, out + r1 * G};
    float_product(p, xs, w, I, G, outs, r + 1 < n ? 2 : 1, G);
  }
  return 0;
}
