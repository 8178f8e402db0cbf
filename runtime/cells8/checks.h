// What an ai.edgernn node's inputs must be, checked before any pointer is computed from them.
//
// A model file is untrusted input: its weights may have been edited or written by another tool.
// The same rules run twice. When ONNX Runtime creates the session, on what it knows then (the
// weights, which are initializers, and the declared or inferred shapes of x, h and c), so that a
// file whose parts do not fit is refused at load. And at every call, on the real tensors, so
// that nothing the load could not see (a symbolic axis, weights fed as inputs) reaches memory.
#pragma once
#include <stdint.h>

#include <string>
#include <vector>

#include "ort_abi.h"

namespace edgernn {

enum Family { LSTM = 0, GRU = 1, RNN = 2, DENSE = 3 };
constexpr int kGates[] = {4, 3, 1, 0};

// Inputs of one product: the integer sums of 65536 products of at most 128 * 128 stay below
// 2^31.
constexpr int64_t kMaxInputs = 65536;

struct Kind {
  const char* name;
  Family family;
  bool quantized;                // W is u8 and x goes to 8 bits (else W float)
  bool float_r = false;          // R is float (H, G*H), h's product in float (else R u8)
  bool step = false;             // one step of ONNX's LSTM/GRU/RNN: x, h, c are (1, B, .)
};

// Where each input sits (-1: the operator has none).
struct Slots {
  int x = 0, h = -1, c = -1, w = -1, ws = -1, wb = -1, r = -1, rs = -1, rb = -1, count = 0;
};

inline Slots slots_of(const Kind& k) {
  Slots s;
  if (k.family == DENSE) {
    s.w = 1, s.ws = 2, s.wb = 3, s.count = 4;
    return s;
  }
  s.h = 1;
  int at = 2;
  if (k.family == LSTM) s.c = at++;
  s.w = at++;
  if (k.quantized) s.ws = at++;
  s.wb = at++, s.r = at++;
  if (!k.float_r) s.rs = at++;
  s.rb = at++;
  s.count = at;
  return s;
}

// At most this many axes (a recurrent step's tensors have two or three): a tensor's axes fit in
// a fixed array, so the checks that run at every call allocate nothing.
constexpr size_t kMaxRank = 8;

class Dims {
 public:
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  int64_t& operator[](size_t i) { return d_[i]; }
  int64_t operator[](size_t i) const { return d_[i]; }
  int64_t& back() { return d_[n_ - 1]; }
  int64_t back() const { return d_[n_ - 1]; }
  int64_t* data() { return d_; }
  const int64_t* data() const { return d_; }
  void assign(size_t n, int64_t v) {      // callers keep n <= kMaxRank
    n_ = n;
    for (size_t i = 0; i < n; ++i) d_[i] = v;
  }
  void push_back(int64_t v) { d_[n_++] = v; }

 private:
  int64_t d_[kMaxRank] = {};
  size_t n_ = 0;
};

// A tensor as far as it is known: element type (0: not known), axes (-1: a dimension not known).
// ``ranked`` is false when not even the number of axes is known.
struct Shape {
  int type = 0;
  bool ranked = false;
  Dims dims;
  std::vector<std::string> names;  // a symbolic axis's name ("" for none): at load only
};

struct Sizes {                   // what the weights say (-1 where not known)
  int64_t input = -1, hidden = -1, width = -1;
  Shape out;                     // the outputs' shape, as far as known
};

// Float weights (W of a float-input cell, the scales and biases) are finite and within this
// bound: a trained network's are far smaller. Beyond it a gate saturates on values so large that
// the kernels' gates and ONNX Runtime's (two approximations of the same function) give answers
// that differ by more than rounding, and no agreement with the file's functions can be promised.
constexpr float kMaxWeight = 1e6f;

inline std::string check_values(const float* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!(v[i] >= -kMaxWeight && v[i] <= kMaxWeight))
      return v[i] != v[i] || v[i] - v[i] != 0.0f
                 ? std::string("holds NaN or infinity")
                 : "holds " + std::to_string(v[i]) + ", beyond the kernels' bound of 1e6";
  return "";
}

inline std::string text(const Shape& s) {
  if (!s.ranked) return "of unknown shape";
  std::string out = "(";
  for (size_t i = 0; i < s.dims.size(); ++i) {
    if (i) out += ", ";
    const bool named = i < s.names.size() && !s.names[i].empty();
    out += s.dims[i] >= 0 ? std::to_string(s.dims[i]) : named ? s.names[i] : std::string("?");
  }
  return out + (s.dims.size() == 1 ? ",)" : ")");
}

inline const char* role(const Kind& k, const Slots& s, int i) {
  if (i == s.x) return "x";
  if (i == s.h) return "h";
  if (i == s.c) return "c";
  if (i == s.w) return "W";
  if (i == s.ws) return "Ws";
  if (i == s.wb) return k.family == DENSE ? "B" : "Wb";
  if (i == s.r) return "R";
  if (i == s.rs) return "Rs";
  return "Rb";
}

// The leading axes of a cell's new state: x's and h's (all but the last) broadcast as the
// operator's function broadcasts them, right-aligned. False where they cannot broadcast; an axis
// stays -1 where it is not known.
inline bool leading(const Shape& x, const Shape& h, Shape* out) {
  const size_t nx = x.dims.size() - 1, nh = h.dims.size() - 1, n = nx > nh ? nx : nh;
  const bool named = !x.names.empty() || !h.names.empty();
  out->dims.assign(n, -1);
  out->names.assign(named ? n : 0, "");
  for (size_t i = 0; i < n; ++i) {                      // i counts from the right
    const bool in_x = i < nx, in_h = i < nh;
    const int64_t a = in_x ? x.dims[nx - 1 - i] : 1, b = in_h ? h.dims[nh - 1 - i] : 1;
    static const std::string none;
    const std::string& na = in_x && nx - 1 - i < x.names.size() ? x.names[nx - 1 - i] : none;
    const std::string& nb = in_h && nh - 1 - i < h.names.size() ? h.names[nh - 1 - i] : none;
    int64_t d = -1;
    std::string name;
    if (a >= 0 && b >= 0) {
      if (a != b && a != 1 && b != 1) return false;
      d = a == 1 ? b : a;
    } else if (a == 1 || b == 1) {
      d = a == 1 ? b : a, name = a == 1 ? nb : na;
    } else if (!na.empty() && na == nb) {
      name = na;
    }
    out->dims[n - 1 - i] = d;
    if (named) out->names[n - 1 - i] = name;
  }
  return true;
}

// The product of ``dims[from:to]``; -1 when one is not known, -2 when it overflows.
inline int64_t count(const Dims& dims, size_t from, size_t to) {
  int64_t n = 1;
  for (size_t i = from; i < to; ++i) {
    if (dims[i] < 0) return -1;
    if (__builtin_mul_overflow(n, dims[i], &n)) return -2;
  }
  return n;
}

// "" when what is known of ``in`` fits ``k``, else what does not; ``sizes`` gets what the weights
// say.
inline std::string check(const Kind& k, const Shape* in, size_t n, Sizes* sizes) {
  const Slots s = slots_of(k);
  if (int(n) != s.count)
    return "takes " + std::to_string(s.count) + " inputs, the node has " + std::to_string(n);
  auto name = [&](int i) { return std::string(role(k, s, i)) + " " + text(in[i]); };
  for (int i = 0; i < s.count; ++i) {
    const bool u8 = (i == s.r && !k.float_r) || (i == s.w && k.quantized);
    if (in[i].type && in[i].type != (u8 ? ELEMENT_UINT8 : ELEMENT_FLOAT))
      return std::string(role(k, s, i)) + " must be " + (u8 ? "uint8" : "float32") +
             ", it has element type " + std::to_string(in[i].type);
  }
  const Shape& w = in[s.w];
  int64_t inputs = -1, width = -1, hidden = -1;
  if (w.ranked) {
    if (w.dims.size() != 2) return "W must have two axes, it is " + text(w);
    inputs = w.dims[k.quantized ? 1 : 0];
    width = w.dims[k.quantized ? 0 : 1];
    if (inputs == 0 || width == 0) return "W is empty: " + text(w);
    if (inputs > kMaxInputs)
      return name(s.w) + " takes more than " + std::to_string(kMaxInputs) + " inputs";
  }
  if (s.r >= 0 && in[s.r].ranked) {
    const Shape& r = in[s.r];
    const int gates = kGates[k.family];
    if (r.dims.size() != 2) return "R must have two axes, it is " + text(r);
    // u8 R: (G*H, H), a row per output; float R: (H, G*H), as a float W
    const int64_t r_in = r.dims[k.float_r ? 0 : 1], r_out = r.dims[k.float_r ? 1 : 0];
    hidden = r_in;
    if (hidden == 0) return "R is empty: " + text(r);
    if (hidden > kMaxInputs)
      return name(s.r) + " takes more than " + std::to_string(kMaxInputs) + " inputs";
    const std::string g = std::to_string(gates * hidden), h = std::to_string(hidden);
    if (hidden > 0 && r_out >= 0 && r_out != gates * hidden)
      return name(s.r) + " must have " + std::to_string(gates) + " outputs per hidden unit (" +
             (k.float_r ? h + ", " + g : g + ", " + h) + ")";
    if (width >= 0 && r_out >= 0 && r_out != width)
      return name(s.w) + " has " + std::to_string(width) + " outputs, but " + name(s.r) +
             " has " + std::to_string(r_out);
    if (width < 0) width = r_out;
  }
  for (int i : {s.ws, s.wb, s.rs, s.rb}) {
    if (i < 0 || !in[i].ranked) continue;
    if (in[i].dims.size() != 1)
      return std::string(role(k, s, i)) + " must have one axis, it is " + text(in[i]);
    if (width >= 0 && in[i].dims[0] >= 0 && in[i].dims[0] != width)
      return name(i) + " must hold one value per output of W (" + std::to_string(width) + ")";
  }
  // A Step operator takes what ONNX's own recurrent operator takes for one time step and one
  // direction (its function is that operator): x (1, B, I), h and c (1, B, H).
  if (k.step) {
    for (int i : {s.x, s.h, s.c}) {
      if (i < 0 || !in[i].ranked) continue;
      const Dims& d = in[i].dims;
      if (d.size() != 3 || (d[0] >= 0 && d[0] != 1))
        return name(i) + " must be (1, batch, " + (i == s.x ? "inputs" : "hidden") +
               "): one time step of one direction";
    }
  }
  // x (and h, c): known rank, one row per leading index; rank 0 is taken as not known at load
  // (ONNX Runtime reports a missing shape so), and refused on a real tensor at every call.
  const Shape& x = in[s.x];
  int64_t x_rows = -1;
  if (x.ranked) {
    if (x.dims.empty()) return "x must have at least one axis, it is a scalar";
    const int64_t last = x.dims.back();
    if (last >= 0 && inputs >= 0 && last != inputs)
      return name(s.w) + " takes " + std::to_string(inputs) + " inputs, but " + name(s.x) +
             " has " + std::to_string(last);
    x_rows = count(x.dims, 0, x.dims.size() - 1);
    if (x_rows == -2) return name(s.x) + " holds too many rows";
  }
  if (s.h >= 0 && in[s.h].ranked) {
    const Shape& h = in[s.h];
    if (h.dims.empty()) return "h must have at least one axis, it is a scalar";
    const int64_t last = h.dims.back();
    if (last >= 0 && hidden >= 0 && last != hidden)
      return name(s.r) + " is for " + std::to_string(hidden) + " hidden units, but " +
             name(s.h) + " has " + std::to_string(last);
    const int64_t h_rows = count(h.dims, 0, h.dims.size() - 1);
    if (h_rows == -2) return name(s.h) + " holds too many rows";
    Shape lead;
    if (x.ranked && !x.dims.empty()) {
      const int64_t rows = leading(x, h, &lead) ? count(lead.dims, 0, lead.dims.size()) : -2;
      if (rows == -2 || (x_rows >= 0 && h_rows >= 0 && (x_rows != h_rows || rows != x_rows)))
        return name(s.x) + " and " + name(s.h) + " do not hold one state row per frame";
      lead.ranked = true;
      if (lead.dims.size() == kMaxRank) return name(s.h) + " has too many axes";
      lead.dims.push_back(hidden);
      if (!lead.names.empty()) lead.names.push_back("");
      sizes->out = lead;
    }
    if (s.c >= 0 && in[s.c].ranked) {
      const Shape& c = in[s.c];
      bool same = c.dims.size() == h.dims.size();
      for (size_t i = 0; same && i < c.dims.size(); ++i)
        same = c.dims[i] < 0 || h.dims[i] < 0 || c.dims[i] == h.dims[i];
      if (!same) return name(s.c) + " must have the shape of " + name(s.h);
    }
  }
  if (k.family == DENSE && x.ranked && !x.dims.empty()) {
    sizes->out = x;
    sizes->out.dims.back() = width;
    if (sizes->out.names.size() == x.dims.size()) sizes->out.names.back() = "";
  }
  sizes->input = inputs;
  sizes->hidden = hidden;
  sizes->width = width;
  return "";
}

// A Step node's hidden_size attribute against what R says (-1: not known yet): its function's
// LSTM/GRU/RNN node needs the attribute, and refuses a file where the two differ.
inline std::string check_hidden_size(int64_t attribute, int64_t hidden) {
  if (attribute < 1)
    return "has no hidden_size attribute (a positive integer), which its function's operator "
           "needs";
  if (hidden >= 0 && attribute != hidden)
    return "has hidden_size " + std::to_string(attribute) + ", but R is for " +
           std::to_string(hidden) + " hidden units";
  return "";
}

}  // namespace edgernn
