// edgernn's int8 layers as ONNX Runtime custom operators (domain "ai.edgernn").
//
// A cell node computes one recurrent layer's whole step: the input projection, the
// hidden-to-hidden product in 8-bit integers, the gates. Dense8 is a product of a bounded
// activation with 8-bit weights (the head on top of the last layer). The plain ONNX meaning of
// each operator travels in the model as a model-local function of the same name
// (exporters/quant/cells8.py writes both): where this library is not registered (the browser,
// Triton, a device without a compiler) ONNX Runtime runs that function; where it is, this kernel.
//
//   LSTMCell8(x, h, c, W, Wb, R, Rs, Rb) -> (h', c')    W: (I, G*H) float, xw = x @ W + Wb
//   LSTMCell8Q(x, h, c, W, Ws, Wb, R, Rs, Rb) -> ...    W: (G*H, I) u8, x bounded, in 8 bits
//   GRUCell8, GRUCell8Q, RNNCell8, RNNCell8Q           the same without c
//   Dense8(x, W, Ws, B) -> y                           W: (N, K) u8, x bounded; y = x W^T + B
//
// Gates in torch's order (LSTM i f g o, GRU r z n), the RNN's tanh. h (and c) may have any shape
// holding B rows of H (the lean graph's (1, B, H) included); the new state has its shape.
// R: (G*H, H) u8 rows around 128; Rs (and Ws): each row's weight scale times 1/127, the 8-bit
// activation's scale; Rb: b_hh. 8-bit activations: QuantizeLinear(v, 1/127, 128).
//
// Every row is computed alone, with exact integer sums and float operations in one fixed order,
// so a pooled row equals the same row stepped alone, and every CPU gives the same bits.
#include <stdio.h>

#include <vector>

#include "arith.h"
#include "ort_abi.h"

namespace {

using namespace edgernn;

const OrtApi* api = nullptr;
constexpr uint32_t kApiVersion = 16;

enum Family { LSTM = 0, GRU = 1, RNN = 2, DENSE = 3 };
constexpr int kGates[] = {4, 3, 1, 0};

struct Kind {
  const char* name;
  Family family;
  bool quantized;                // W is u8 and x goes to 8 bits (else W float)
};
constexpr Kind kKinds[] = {
    {"LSTMCell8", LSTM, false}, {"LSTMCell8Q", LSTM, true}, {"GRUCell8", GRU, false},
    {"GRUCell8Q", GRU, true},   {"RNNCell8", RNN, false},   {"RNNCell8Q", RNN, true},
    {"Dense8", DENSE, true},
};

// ---------------------------------------------------------------- one row

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

// out[j] = sum_k x[k] w[k][j], k in order, in blocks of 64 columns that stay in registers
// through k (a plain loop over all G columns reads and writes out once per k).
EDGERNN_CLONES void float_product(const float* __restrict x, const float* __restrict w,
                                  int64_t I, int64_t G, float* __restrict out) {
  constexpr int64_t kBlock = 64;
  int64_t j0 = 0;
  for (; j0 + kBlock <= G; j0 += kBlock) {
    float sum[kBlock] = {};
    for (int64_t k = 0; k < I; ++k) {
      const float xk = x[k];
      const float* __restrict wk = w + k * G + j0;
      for (int64_t j = 0; j < kBlock; ++j) sum[j] += xk * wk[j];
    }
    for (int64_t j = 0; j < kBlock; ++j) out[j0 + j] = sum[j];
  }
  for (int64_t j = j0; j < G; ++j) out[j] = 0.0f;
  for (int64_t k = 0; k < I; ++k)
    for (int64_t j = j0; j < G; ++j) out[j] += x[k] * w[k * G + j];
}

// c' = f c + i g, h' = o tanh(c') from the gates (i f g o) in ``gates``: its own function, as
// inside step_row the compiler does not vectorise it.
EDGERNN_CLONES void lstm_state(int64_t H, const float* __restrict gates,
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
EDGERNN_CLONES void gru_state(int64_t H, const float* __restrict xw,
                              const float* __restrict gates, const float* __restrict h,
                              float* __restrict ho) {
  for (int64_t k = 0; k < H; ++k) {
    float n = tanh_approx(xw[2 * H + k] + gates[k] * gates[2 * H + k]);
    ho[k] = n + gates[H + k] * (h[k] - n);
  }
}

EDGERNN_CLONES void step_row(const Weights& m, const Row& io) {
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
    product(q, m.wq, G, I, acc);
    for (int64_t j = 0; j < G; ++j) xw[j] = float(acc[j]) * ws[j] + wb[j];
  } else {                                                   // x @ W in float, k in order
    float_product(x, m.w, I, G, xw);
    for (int64_t j = 0; j < G; ++j) xw[j] += wb[j];
  }
  if (m.family == DENSE) return;
  const float* __restrict rs = m.rs;
  const float* __restrict rb = m.rb;
  for (int64_t k = 0; k < H; ++k) q[k] = quantize(h[k]);
  product(q, m.r, G, H, acc);
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

// ---------------------------------------------------------------- the node

struct Tensor {
  const OrtValue* value = nullptr;
  std::vector<int64_t> dims;
  int type = 0;
  int64_t size = 1;
  template <typename T>
  T* data() const {
    void* p = nullptr;
    api->GetTensorMutableData(const_cast<OrtValue*>(value), &p);
    return static_cast<T*>(p);
  }
};

OrtStatus* describe(const OrtValue* value, Tensor* t) {
  OrtTensorTypeAndShapeInfo* info = nullptr;
  OrtStatus* s = api->GetTensorTypeAndShape(value, &info);
  if (s) return s;
  size_t n = 0;
  if (!(s = api->GetDimensionsCount(info, &n))) {
    t->dims.resize(n);
    if (!(s = api->GetDimensions(info, t->dims.data(), n)))
      s = api->GetTensorElementType(info, &t->type);
  }
  api->ReleaseTensorTypeAndShapeInfo(info);
  t->value = value;
  for (int64_t d : t->dims) t->size *= d;
  return s;
}

OrtStatus* fail(const Kind& kind, const char* what) {
  char text[300];
  snprintf(text, sizeof text, "ai.edgernn %s: %s", kind.name, what);
  return api->CreateStatus(ORT_INVALID_ARGUMENT, text);
}

size_t input_count(const Kind& k) {
  if (k.family == DENSE) return 4;
  return (k.family == LSTM ? 3 : 2) + (k.quantized ? 3 : 2) + 3;
}

OrtStatus* compute(const Kind& kind, OrtKernelContext* ctx) {
  const size_t n = input_count(kind);
  Tensor in[9];
  for (size_t i = 0; i < n; ++i) {
    const OrtValue* v = nullptr;
    OrtStatus* s = api->KernelContext_GetInput(ctx, i, &v);
    if (!s && v == nullptr) return fail(kind, "an input is missing");
    if (s || (s = describe(v, &in[i]))) return s;
  }
  const bool lstm = kind.family == LSTM, dense = kind.family == DENSE;
  const size_t states = dense ? 0 : (lstm ? 2 : 1), at = 1 + states;   // W's position
  const Tensor &x = in[0], &w = in[at];
  const Tensor& wb = in[at + (kind.quantized ? 2 : 1)];
  Weights m{};
  m.family = kind.family;
  m.quantized = kind.quantized;
  if (w.dims.size() != 2 || w.type != (kind.quantized ? ELEMENT_UINT8 : ELEMENT_FLOAT))
    return fail(kind, kind.quantized ? "W must be u8 (outputs, inputs)"
                                     : "W must be float (inputs, outputs)");
  m.width = kind.quantized ? w.dims[0] : w.dims[1];
  m.input = kind.quantized ? w.dims[1] : w.dims[0];
  if (kind.quantized) {
    m.wq = w.data<uint8_t>();
    if (in[at + 1].size != m.width) return fail(kind, "Ws must hold one scale per output");
    m.ws = in[at + 1].data<float>();
  } else {
    m.w = w.data<float>();
  }
  if (wb.size != m.width) return fail(kind, "the bias must hold one value per output");
  m.wb = wb.data<float>();
  if (m.input == 0 || x.size % m.input)
    return fail(kind, "x's size is not a multiple of W's inputs");
  const int64_t batch = x.size / m.input;
  std::vector<int64_t> out_dims = x.dims;
  if (!dense) {
    const Tensor &h = in[1], &r = in[at + (kind.quantized ? 3 : 2)];
    const Tensor& rs = in[at + (kind.quantized ? 4 : 3)];
    const Tensor& rb = in[at + (kind.quantized ? 5 : 4)];
    if (r.type != ELEMENT_UINT8 || r.dims.size() != 2 ||
        r.dims[0] != kGates[kind.family] * r.dims[1] || r.dims[0] != m.width)
      return fail(kind, "R must be u8 shaped (gates * hidden, hidden), one row per output of W");
    m.hidden = r.dims[1];
    if (rs.size != m.width || rb.size != m.width)
      return fail(kind, "Rs and Rb must hold one value per row of R");
    if (h.size != batch * m.hidden)
      return fail(kind, "the state must hold one row of hidden per row of x");
    if (lstm && in[2].size != h.size) return fail(kind, "c must have the shape of h");
    m.r = r.data<uint8_t>();
    m.rs = rs.data<float>();
    m.rb = rb.data<float>();
    out_dims = h.dims;
  } else {
    if (x.dims.empty()) return fail(kind, "x must have a last axis");
    out_dims.back() = m.width;
  }
  OrtValue* outs[2] = {nullptr, nullptr};
  for (size_t o = 0; o < (lstm ? 2u : 1u); ++o) {
    OrtStatus* s =
        api->KernelContext_GetOutput(ctx, o, out_dims.data(), out_dims.size(), &outs[o]);
    if (s) return s;
  }
  float *h_out = nullptr, *c_out = nullptr;
  api->GetTensorMutableData(outs[0], reinterpret_cast<void**>(&h_out));
  if (lstm) api->GetTensorMutableData(outs[1], reinterpret_cast<void**>(&c_out));

  const int64_t longest = m.input > m.hidden ? m.input : m.hidden;
  std::vector<int8_t> q(longest);
  std::vector<int32_t> acc(m.width);
  std::vector<float> xw(dense ? 0 : m.width), rec(m.width);
  const float* xs = x.data<float>();
  const float* hs = dense ? nullptr : in[1].data<float>();
  const float* cs = lstm ? in[2].data<float>() : nullptr;
  for (int64_t b = 0; b < batch; ++b) {
    Row io{};
    io.x = xs + b * m.input;
    io.q = q.data();
    io.acc = acc.data();
    io.rec = rec.data();
    if (dense) {
      io.xw = h_out + b * m.width;                            // the product is the output
    } else {
      io.xw = xw.data();
      io.h = hs + b * m.hidden;
      io.h_out = h_out + b * m.hidden;
      io.c = lstm ? cs + b * m.hidden : nullptr;
      io.c_out = lstm ? c_out + b * m.hidden : nullptr;
    }
    step_row(m, io);
  }
  return nullptr;
}

// ---------------------------------------------------------------- registration

struct Op {
  OrtCustomOp base;
  const Kind* kind;
};

const Kind& kind_of(const OrtCustomOp* op) { return *reinterpret_cast<const Op*>(op)->kind; }

OrtStatus* create_kernel(const OrtCustomOp* op, const OrtApi*, const OrtKernelInfo*,
                         void** kernel) {
  *kernel = const_cast<Kind*>(&kind_of(op));
  return nullptr;
}
void* create_kernel_v1(const OrtCustomOp* op, const OrtApi*, const OrtKernelInfo*) {
  return const_cast<Kind*>(&kind_of(op));
}
OrtStatus* compute_v2(void* kernel, OrtKernelContext* ctx) {
  return compute(*static_cast<const Kind*>(kernel), ctx);
}
// ONNX Runtime 1.16 and later call compute_v2, which reports errors; this older entry point
// is required to be there but is never reached by the versions edgernn supports.
void compute_v1(void* kernel, OrtKernelContext* ctx) {
  OrtStatus* s = compute_v2(kernel, ctx);
  if (s) api->ReleaseStatus(s);
}
void destroy(void*) {}
const char* name(const OrtCustomOp* op) { return kind_of(op).name; }
const char* provider(const OrtCustomOp*) { return "CPUExecutionProvider"; }
size_t inputs(const OrtCustomOp* op) { return input_count(kind_of(op)); }
size_t outputs(const OrtCustomOp* op) { return kind_of(op).family == LSTM ? 2 : 1; }
int input_type(const OrtCustomOp* op, size_t i) {
  const Kind& k = kind_of(op);
  const size_t at = k.family == DENSE ? 1 : (k.family == LSTM ? 3 : 2);
  if (i == at) return k.quantized ? ELEMENT_UINT8 : ELEMENT_FLOAT;     // W
  if (k.family != DENSE && i == at + (k.quantized ? 3 : 2)) return ELEMENT_UINT8;   // R
  return ELEMENT_FLOAT;
}
int output_type(const OrtCustomOp*, size_t) { return ELEMENT_FLOAT; }
int required(const OrtCustomOp*, size_t) { return 0; }
int on_cpu(const OrtCustomOp*, size_t) { return 0; }
int none(const OrtCustomOp*) { return 0; }

Op make(const Kind& kind) {
  Op op{};
  op.kind = &kind;
  OrtCustomOp& o = op.base;
  o.version = kApiVersion;
  o.CreateKernel = create_kernel_v1;
  o.GetName = name;
  o.GetExecutionProviderType = provider;
  o.GetInputType = input_type;
  o.GetInputTypeCount = inputs;
  o.GetOutputType = output_type;
  o.GetOutputTypeCount = outputs;
  o.KernelCompute = compute_v1;
  o.KernelDestroy = destroy;
  o.GetInputCharacteristic = required;
  o.GetOutputCharacteristic = required;
  o.GetInputMemoryType = on_cpu;
  o.GetVariadicInputMinArity = none;
  o.GetVariadicInputHomogeneity = none;
  o.GetVariadicOutputMinArity = none;
  o.GetVariadicOutputHomogeneity = none;
  o.CreateKernelV2 = create_kernel;
  o.KernelComputeV2 = compute_v2;
  return op;
}

Op ops[] = {make(kKinds[0]), make(kKinds[1]), make(kKinds[2]), make(kKinds[3]),
            make(kKinds[4]), make(kKinds[5]), make(kKinds[6])};

}  // namespace

extern "C" __attribute__((visibility("default")))
OrtStatus* RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* base) {
  api = base->GetApi(kApiVersion);
  if (api == nullptr) return nullptr;   // an ONNX Runtime older than 1.16: the functions run
  OrtCustomOpDomain* domain = nullptr;
  OrtStatus* s = api->CreateCustomOpDomain("ai.edgernn", &domain);
  for (Op& op : ops)
    if (!s) s = api->CustomOpDomain_Add(domain, &op.base);
  return s ? s : api->AddCustomOpDomain(options, domain);
}
