// One row of an ai.edgernn node: the input product (float, or 8-bit), the recurrent product in
// 8 bits, the gates and the new state. Each row is computed alone, in one fixed order, so a
// pooled row equals the row stepped alone, and every CPU gives the same bits.
#pragma once
#include <stdint.h>

#include "arith.h"
#include "checks.h"
#include "product.h"

namespace edgernn {

struct Row {                     // one row's inputs and outputs, and scratch space
  const float *x, *h, *c;
  float *h_out, *c_out;
  int8_t* q;                     // an activation in 8 bits
  int32_t* acc;
  float *xw, *rec;
};

struct Weights {
  Family family;
  bool quantized;
  Path path;
  bool w_zero, r_zero;           // the u8 W, R hold the byte 0 (the product's careful form)
  int64_t input, hidden, width;  // I, H, G*H
  const float* w;                // float W (I, G*H)
  const uint8_t* wq;             // or u8 W (G*H, I)
  const float *ws, *wb;
  const uint8_t* r;
  const float *rs, *rb;
};

#if defined(__x86_64__) && defined(__GNUC__)
#define EDGERNN_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define EDGERNN_CLONES
#endif

// c' = f c + i g, h' = o tanh(c') from the gates (i f g o) in ``gates``: its own function, as
// inside step_row the compiler does not vectorise it.
EDGERNN_CLONES static void lstm_state(int64_t H, const float* __restrict gates,
                               const float* __restrict c, float* __restrict co,
                               float* __restrict ho) {
  for (int64_t k = 0; k < H; ++k) {
    float cn = gates[H + k] * c[k] + gates[k] * gates[2 * H + k];
    co[k] = cn;
    ho[k] = gates[3 * H + k] * tanh_approx(cn);
  }
}

// n = tanh(xn + r rn), h' = n + z (h - n), from r and z (already through their sigmoid) and
// the n parts of both products: its own function, for the same reason.
EDGERNN_CLONES static void gru_state(int64_t H, const float* __restrict xw,
                              const float* __restrict gates, const float* __restrict h,
                              float* __restrict ho) {
  for (int64_t k = 0; k < H; ++k) {
    float n = tanh_approx(xw[2 * H + k] + gates[k] * gates[2 * H + k]);
    ho[k] = n + gates[H + k] * (h[k] - n);
  }
}

EDGERNN_CLONES static void step_row(const Weights& m, const Row& io) {
  // Every pointer in a local first: a store through q (int8, a char type that may alias
  // anything) would otherwise make the compiler reload them each time and not vectorise.
  const int64_t H = m.hidden, G = m.width, I = m.input;
  const float* __restrict x = io.x;
  const float* __restrict h = io.h;
  const float* __restrict c = io.c;
  const float* __restrict wb = m.wb;
  float* __restrict xw = io.xw;
  float* __restrict rec = io.rec;
  float* __restrict ho = io.h_out;
  float* __restrict co = io.c_out;
  int32_t* __restrict acc = io.acc;
  int8_t* __restrict q = io.q;
  if (m.quantized) {                                         // x @ W^T in 8 bits
    const float* __restrict ws = m.ws;
    for (int64_t k = 0; k < I; ++k) q[k] = quantize(x[k]);
    product(m.path, m.w_zero, q, m.wq, G, I, acc);
    for (int64_t j = 0; j < G; ++j) xw[j] = float(acc[j]) * ws[j] + wb[j];
  } else {                                                   // x @ W in float, k in order
    float_product(m.path, x, m.w, I, G, xw);
    for (int64_t j = 0; j < G; ++j) xw[j] += wb[j];
  }
  if (m.family == DENSE) return;
  const float* __restrict rs = m.rs;
  const float* __restrict rb = m.rb;
  for (int64_t k = 0; k < H; ++k) q[k] = quantize(h[k]);
  product(m.path, m.r_zero, q, m.r, G, H, acc);
  for (int64_t j = 0; j < G; ++j) rec[j] = float(acc[j]) * rs[j] + rb[j];
  if (m.family == LSTM) {                                   // gates i f g o, one loop each
    for (int64_t j = 0; j < 2 * H; ++j) rec[j] = sigmoid(xw[j] + rec[j]);
    for (int64_t j = 2 * H; j < 3 * H; ++j) rec[j] = tanh_approx(xw[j] + rec[j]);
    for (int64_t j = 3 * H; j < 4 * H; ++j) rec[j] = sigmoid(xw[j] + rec[j]);
    lstm_state(H, rec, c, co, ho);
  } else if (m.family == GRU) {                              // gates r z, then n and h'
    for (int64_t j = 0; j < 2 * H; ++j) rec[j] = sigmoid(xw[j] + rec[j]);
    gru_state(H, xw, rec, h, ho);
  } else {
    for (int64_t k = 0; k < H; ++k) ho[k] = tanh_approx(xw[k] + rec[k]);
  }
}

}  // namespace edgernn
