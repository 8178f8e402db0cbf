// The rows of an ai.edgernn node: the input product (float, or 8-bit), the recurrent product in
// 8 bits, the gates and the new state. Rows go in pairs that share each pass over the weights;
// each row's integer sums are exact and its float operations run in one fixed order, so a pooled
// row equals the row stepped alone, and every CPU gives the same bits.
#pragma once
#include <stdint.h>

#include <vector>

#include "arith.h"
#include "checks.h"
#include "floats.h"
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
  bool w_zero, r_zero;           // the file's u8 W, R hold the byte 0 (the careful form)
  int64_t input, hidden, width;  // I, H, G*H
  const float* w;                // float W (I, G*H)
  const int8_t* wq;              // or 8-bit W (G*H, I), centred (product.h)
  const float *ws, *wb;
  bool float_r;                  // R float (H, G*H): h's product in float
  const int8_t* r;               // or u8 R (G*H, H), centred
  const float* rf;
  const float *rs, *rb;
  const float *w_panels, *r_panels;   // float W and R packed (floats.h), or null
};

#if defined(__x86_64__) && defined(__GNUC__)
#define EDGERNN_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define EDGERNN_CLONES
#endif

EDGERNN_CLONES static void add_row(const float* __restrict b, int64_t n, float* __restrict out) {
  for (int64_t j = 0; j < n; ++j) out[j] += b[j];
}

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

// The gates and the new state of one row, from its two products (xw: x W + Wb, rec: h R + Rb).
EDGERNN_CLONES static void finish_row(const Weights& m, const Row& io) {
  const int64_t H = m.hidden;
  const float* __restrict xw = io.xw;
  const float* __restrict h = io.h;
  const float* __restrict c = io.c;
  float* __restrict rec = io.rec;
  float* __restrict ho = io.h_out;
  if (m.family == LSTM) {                                   // gates i f g o, one loop each
    for (int64_t j = 0; j < 2 * H; ++j) rec[j] = sigmoid(xw[j] + rec[j]);
    for (int64_t j = 2 * H; j < 3 * H; ++j) rec[j] = tanh_approx(xw[j] + rec[j]);
    for (int64_t j = 3 * H; j < 4 * H; ++j) rec[j] = sigmoid(xw[j] + rec[j]);
    lstm_state(H, rec, c, io.c_out, ho);
  } else if (m.family == GRU) {                              // gates r z, then n and h'
    for (int64_t j = 0; j < 2 * H; ++j) rec[j] = sigmoid(xw[j] + rec[j]);
    gru_state(H, xw, rec, h, ho);
  } else {
    for (int64_t k = 0; k < H; ++k) ho[k] = tanh_approx(xw[k] + rec[k]);
  }
}

// q = the 8-bit activation of v; out = acc * scale + bias: one loop each, on locals (a store
// through int8 q may alias anything, and would stop the vectoriser).
EDGERNN_CLONES static void quantize_row(const float* __restrict v, int64_t n,
                                        int8_t* __restrict q) {
  for (int64_t k = 0; k < n; ++k) q[k] = quantize(v[k]);
}
EDGERNN_CLONES static void scale_row(const int32_t* __restrict acc, const float* __restrict scale,
                                     const float* __restrict bias, int64_t n,
                                     float* __restrict out) {
  for (int64_t j = 0; j < n; ++j) out[j] = float(acc[j]) * scale[j] + bias[j];
}

// One step of ``n`` rows (1 or 2): the two rows of a pair share each pass over the 8-bit
// weights, and each row's integer sums, and so its floats, are what it gets alone.
static void step_rows(const Weights& m, const Row* io, int n) {
  const int64_t H = m.hidden, G = m.width, I = m.input;
  const int8_t* q[2] = {io[0].q, io[n - 1].q};
  int32_t* acc[2] = {io[0].acc, io[n - 1].acc};
  if (m.quantized) {                                         // x @ W^T in 8 bits
    for (int r = 0; r < n; ++r) quantize_row(io[r].x, I, io[r].q);
    product(m.path, m.w_zero, q, m.wq, G, I, acc, n);
    for (int r = 0; r < n; ++r) scale_row(io[r].acc, m.ws, m.wb, G, io[r].xw);
  } else {                                                   // x @ W in float, k in order
    const float* xs[2] = {io[0].x, io[n - 1].x};
    float* xws[2] = {io[0].xw, io[n - 1].xw};
    float_product(m.path, xs, m.w, I, G, xws, n, G);
    for (int r = 0; r < n; ++r) add_row(m.wb, G, io[r].xw);
  }
  if (m.family == DENSE) return;
  if (m.float_r) {                                           // h @ R in float
    const float* hs[2] = {io[0].h, io[n - 1].h};
    float* recs[2] = {io[0].rec, io[n - 1].rec};
    float_product(m.path, hs, m.rf, H, G, recs, n, G);
    for (int r = 0; r < n; ++r) {
      add_row(m.rb, G, io[r].rec);
      finish_row(m, io[r]);
    }
    return;
  }
  for (int r = 0; r < n; ++r) quantize_row(io[r].h, H, io[r].q);
  product(m.path, m.r_zero, q, m.r, G, H, acc, n);
  for (int r = 0; r < n; ++r) {
    scale_row(io[r].acc, m.rs, m.rb, G, io[r].rec);
    finish_row(m, io[r]);
  }
}

// A float cell's step (float W and R: the Step operators, LSTMCellF) for ``n`` rows: each product
// takes all of them one block of columns at a time (float_product_rows, W and R read once for the
// n rows), then each row its biases and gates in step_rows' order, so a row's bits are those it
// gets alone. xw and rec: scratch for n rows of G*H each.
static void float_rows(const Weights& m, const float* xs, const float* hs, const float* cs,
                       float* h_out, float* c_out, int64_t n, float* xw, float* rec) {
  const int64_t H = m.hidden, G = m.width, I = m.input;
  float_product_rows(m.path, xs, I, n, m.w, m.w_panels, I, G, xw, G);
  float_product_rows(m.path, hs, H, n, m.rf, m.r_panels, H, G, rec, G);
  for (int64_t b = 0; b < n; ++b) {
    Row io = {};
    io.x = xs + b * I;
    io.h = hs + b * H;
    io.c = cs ? cs + b * H : nullptr;
    io.h_out = h_out + b * H;
    io.c_out = c_out ? c_out + b * H : nullptr;
    io.xw = xw + b * G;
    io.rec = rec + b * G;
    add_row(m.wb, G, io.xw);
    add_row(m.rb, G, io.rec);
    finish_row(m, io);
  }
}

// A float cell's step for all ``rows`` rows, in blocks of 64 (float_rows), with the scratch for
// one block kept in ``xw`` and ``rec`` (grown once, then reused).
static void float_cell(const Weights& m, const float* xs, const float* hs, const float* cs,
                       float* h_out, float* c_out, int64_t rows, std::vector<float>* xw,
                       std::vector<float>* rec) {
  constexpr int64_t kRows = 64;
  const int64_t block = rows < kRows ? rows : kRows;
  if (int64_t(xw->size()) < block * m.width) {
    xw->resize(size_t(block * m.width));
    rec->resize(size_t(block * m.width));
  }
  for (int64_t b0 = 0; b0 < rows; b0 += kRows) {
    const int64_t n = rows - b0 < kRows ? rows - b0 : kRows;
    float_rows(m, xs + b0 * m.input, hs + b0 * m.hidden, cs ? cs + b0 * m.hidden : nullptr,
               h_out + b0 * m.hidden, c_out ? c_out + b0 * m.hidden : nullptr, n, xw->data(),
               rec->data());
  }
}

}  // namespace edgernn
