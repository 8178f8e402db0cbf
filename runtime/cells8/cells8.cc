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
//   LSTMCellF(x, h, c, W, Wb, R, Rb), ...CellFQ(x, h, c, W, Ws, Wb, R, Rb), GRU.., RNN..
//                                                      R: (H, G*H) float, h @ R + Rb in float
//   LSTMStep(x, h, c, W, Wb, R, Rb), GRUStep, RNNStep: as LSTMCellF, all in float, with x, h and c
//                                                      (1, B, .): one step of ONNX's operator
//   Dense8(x, W, Ws, B) -> y                           W: (N, K) u8, x bounded; y = x W^T + B
//
// Gates in torch's order (LSTM i f g o, GRU r z n), the RNN's tanh. h (and c) may have any shape
// holding B rows of H (the lean graph's (1, B, H) included); the new state has its shape.
// R: (G*H, H) u8 rows around 128; Rs (and Ws): each row's weight scale times 1/127, the 8-bit
// activation's scale; Rb: b_hh. 8-bit activations: QuantizeLinear(v, 1/127, 128).
//
// Every row is computed alone, with exact integer sums and float operations in one fixed order,
// so a pooled row equals the same row stepped alone, and every CPU gives the same bits.
//
// A model file is untrusted: checks.h holds what every input must be, checked when the session is
// created (a file whose parts do not fit is refused at load, naming the node, the tensor and both
// shapes) and again on the real tensors at every call, before any pointer is computed.
#include <string.h>

#include <atomic>
#include <string>
#include <vector>

#include "checks.h"
#include "ort_abi.h"
#include "product.h"
#include "row.h"
#include "tensors.h"
#include "load.h"

namespace {

using namespace edgernn;

constexpr uint32_t kApiVersion = 17;
std::atomic<int> chosen{PORTABLE};   // the product path, read when a session registers the kernels

constexpr Kind kKinds[] = {
    {"LSTMCell8", LSTM, false}, {"LSTMCell8Q", LSTM, true}, {"GRUCell8", GRU, false},
    {"GRUCell8Q", GRU, true},   {"RNNCell8", RNN, false},   {"RNNCell8Q", RNN, true},
    {"Dense8", DENSE, true},
    // the hidden-to-hidden product in float (quantize --recurrent fp32, the RNN's default)
    {"LSTMCellF", LSTM, false, true}, {"LSTMCellFQ", LSTM, true, true},
    {"GRUCellF", GRU, false, true},   {"GRUCellFQ", GRU, true, true},
    {"RNNCellF", RNN, false, true},   {"RNNCellFQ", RNN, true, true},
    // an fp32 layer's step: a float cell whose function is ONNX's own operator (the lean export)
    {"LSTMStep", LSTM, false, true, true}, {"GRUStep", GRU, false, true, true},
    {"RNNStep", RNN, false, true, true},
};
constexpr int kKindCount = int(sizeof(kKinds) / sizeof(kKinds[0]));

// ---------------------------------------------------------------- the node

// One node's kernel: what it is, its name for messages, the product path, and the weights the
// session's load checked (their data by input slot; whether the u8 W and R hold the byte 0).
struct Kernel {
  const Kind* kind;
  std::string node;
  Path path;
  const void* seen[9] = {};
  Tensor known[9];               // the initializers the load checked, as it described them
  bool w_zero = true, r_zero = true;
  std::vector<int8_t> w_centred, r_centred;   // their u8 W and R centred, once (product.h)
  int64_t hidden_size = -1;      // a Step node's attribute, which its function's operator reads
  std::vector<float> w_panels, r_panels;      // a float cell's W and R packed, once (floats.h)
};

// Scratch space for one call's rows, kept per thread between calls (a call allocates nothing
// once a thread has seen a layer this wide).
struct Scratch {
  std::vector<int8_t> q, w, r;          // two rows' 8-bit activations; weights fed at the call
  std::vector<int32_t> acc;
  std::vector<float> xw, rec;
  std::vector<float> fxw, frec;         // a float cell's block of rows (float_rows)
};

// The centred form of a u8 weight: the load's copy for the initializer it checked, else made
// in ``spare`` for this call (weights fed as inputs).
const int8_t* centred(const Tensor& t, const void* seen, const std::vector<int8_t>& made,
                      std::vector<int8_t>* spare) {
  if (t.data == seen && !made.empty()) return made.data();
  spare->resize(size_t(t.size));
  centre(static_cast<const uint8_t*>(t.data), t.size, spare->data());
  return spare->data();
}
thread_local Scratch scratch;

// The weights' values: checked at load for initializers, and at a call for weights the load did
// not see (fed as inputs). "" when they are usable, else what is wrong. ``zero`` gets whether
// each u8 matrix holds the byte 0.
std::string check_weights(const Kind& kind, const Tensor* in, const void* const* seen,
                          bool* w_zero, bool* r_zero) {
  const Slots sl = slots_of(kind);
  for (int i : {sl.w, sl.ws, sl.wb, sl.r, sl.rs, sl.rb}) {
    if (i < 0 || in[i].data == nullptr || in[i].data == seen[i]) continue;
    const bool u8 = (i == sl.r && !kind.float_r) || (i == sl.w && kind.quantized);
    if (u8) {
      (i == sl.r ? *r_zero : *w_zero) =
          holds_zero(static_cast<const uint8_t*>(in[i].data), in[i].size);
      continue;
    }
    const std::string wrong = check_values(static_cast<const float*>(in[i].data), in[i].size);
    if (!wrong.empty()) return std::string(role(kind, sl, i)) + " " + wrong;
  }
  return "";
}

OrtStatus* compute(const Kernel& kernel, OrtKernelContext* ctx) {
  const Kind& kind = *kernel.kind;
  const Slots sl = slots_of(kind);
  size_t n = 0;
  if (OrtStatus* s = api->KernelContext_GetInputCount(ctx, &n)) return s;
  if (n != size_t(sl.count)) return fail(kind, kernel.node, "wrong number of inputs", false);
  Tensor in[9];
  Shape shapes[9];
  for (size_t i = 0; i < n; ++i) {
    const OrtValue* v = nullptr;
    if (OrtStatus* s = api->KernelContext_GetInput(ctx, i, &v)) return s;
    if (v == nullptr)
      return fail(kind, kernel.node, std::string(role(kind, sl, int(i))) + " is missing", false);
    void* data = nullptr;                 // an initializer the load checked: as it described it
    if (kernel.seen[i] != nullptr) {
      if (OrtStatus* s = api->GetTensorMutableData(const_cast<OrtValue*>(v), &data)) return s;
    }
    if (data != nullptr && data == kernel.seen[i]) {
      in[i].data = data;
      in[i].size = kernel.known[i].size;
      shapes[i].type = kernel.known[i].shape.type;
      shapes[i].ranked = true;
      shapes[i].dims = kernel.known[i].shape.dims;
      continue;
    }
    if (OrtStatus* s = describe(v, &in[i])) return s;
    shapes[i].type = in[i].shape.type;
    shapes[i].ranked = in[i].shape.ranked;
    shapes[i].dims = in[i].shape.dims;
  }
  Sizes sizes;
  std::string wrong = check(kind, shapes, n, &sizes);
  if (wrong.empty() && kind.step) wrong = check_hidden_size(kernel.hidden_size, sizes.hidden);
  bool w_zero = kernel.w_zero, r_zero = kernel.r_zero;
  if (wrong.empty()) wrong = check_weights(kind, in, kernel.seen, &w_zero, &r_zero);
  if (!wrong.empty()) return fail(kind, kernel.node, wrong, false);
  const bool lstm = kind.family == LSTM, dense = kind.family == DENSE;
  Weights m{};
  m.family = kind.family;
  m.quantized = kind.quantized;
  m.path = kernel.path;
  m.input = sizes.input;
  m.width = sizes.width;
  m.hidden = dense ? 0 : sizes.hidden;
  const Tensor& x = in[sl.x];
  const int64_t rows = x.size / m.input;
  if (kind.quantized) {
    m.wq = centred(in[sl.w], kernel.seen[sl.w], kernel.w_centred, &scratch.w);
    m.ws = static_cast<const float*>(in[sl.ws].data);
    m.w_zero = w_zero;
  } else {
    m.w = static_cast<const float*>(in[sl.w].data);
  }
  m.wb = static_cast<const float*>(in[sl.wb].data);
  const Dims& out_dims = sizes.out.dims;
  if (!dense) {
    m.float_r = kind.float_r;
    if (kind.float_r) {
      m.rf = static_cast<const float*>(in[sl.r].data);
    } else {
      m.r = centred(in[sl.r], kernel.seen[sl.r], kernel.r_centred, &scratch.r);
      m.rs = static_cast<const float*>(in[sl.rs].data);
    }
    m.rb = static_cast<const float*>(in[sl.rb].data);
    m.r_zero = r_zero;
  }
  float* outs[2] = {nullptr, nullptr};
  for (size_t o = 0; o < (lstm ? 2u : 1u); ++o) {
    OrtValue* value = nullptr;
    if (OrtStatus* s = api->KernelContext_GetOutput(ctx, o, out_dims.data(), out_dims.size(),
                                                    &value))
      return s;
    if (value == nullptr) return api->CreateStatus(ORT_FAIL, "ai.edgernn: no output tensor");
    if (OrtStatus* s = api->GetTensorMutableData(value, reinterpret_cast<void**>(&outs[o])))
      return s;
  }
  if (rows == 0) return nullptr;                          // empty in, empty out
  if (outs[0] == nullptr || (lstm && outs[1] == nullptr))
    return api->CreateStatus(ORT_FAIL, "ai.edgernn: an output tensor has no data");

  const float* xs = static_cast<const float*>(x.data);
  const float* hs = dense ? nullptr : static_cast<const float*>(in[sl.h].data);
  const float* cs = lstm ? static_cast<const float*>(in[sl.c].data) : nullptr;
  Scratch& sc = scratch;
  if (!kind.quantized && kind.float_r) {          // all in float: blocks of rows (row.h)
    const bool packed = in[sl.w].data == kernel.seen[sl.w] &&
                        in[sl.r].data == kernel.seen[sl.r] && !kernel.w_panels.empty() &&
                        !kernel.r_panels.empty();
    m.w_panels = packed ? kernel.w_panels.data() : nullptr;
    m.r_panels = packed ? kernel.r_panels.data() : nullptr;
    float_cell(m, xs, hs, cs, outs[0], lstm ? outs[1] : nullptr, rows, &sc.fxw, &sc.frec);
    return nullptr;
  }
  const int64_t longest = m.input > m.hidden ? m.input : m.hidden;   // two rows' worth
  if (int64_t(sc.q.size()) < 2 * longest) sc.q.resize(size_t(2 * longest));
  if (int64_t(sc.acc.size()) < 2 * m.width) {
    sc.acc.resize(size_t(2 * m.width));
    sc.xw.resize(size_t(2 * m.width));
    sc.rec.resize(size_t(2 * m.width));
  }
  for (int64_t b0 = 0; b0 < rows; b0 += 2) {
    const int n = rows - b0 >= 2 ? 2 : 1;
    Row io[2] = {};
    for (int r = 0; r < n; ++r) {
      const int64_t b = b0 + r;
      io[r].x = xs + b * m.input;
      io[r].q = sc.q.data() + r * longest;
      io[r].acc = sc.acc.data() + r * m.width;
      io[r].rec = sc.rec.data() + r * m.width;
      if (dense) {
        io[r].xw = outs[0] + b * m.width;                     // the product is the output
      } else {
        io[r].xw = sc.xw.data() + r * m.width;
        io[r].h = hs + b * m.hidden;
        io[r].h_out = outs[0] + b * m.hidden;
        io[r].c = lstm ? cs + b * m.hidden : nullptr;
        io[r].c_out = lstm ? outs[1] + b * m.hidden : nullptr;
      }
    }
    step_rows(m, io, n);
  }
  return nullptr;
}

// ---------------------------------------------------------------- at load

OrtStatus* create(const Kind& kind, const OrtKernelInfo* info, Kernel** out) {
  const Slots sl = slots_of(kind);
  std::string node = node_name(info);
  size_t n = 0;
  if (OrtStatus* s = api->KernelInfo_GetInputCount(info, &n)) return s;
  std::vector<Shape> shapes;
  std::vector<Tensor> constants;
  if (OrtStatus* s = load_shapes(info, n, &shapes, &constants)) return s;
  Sizes sizes;
  std::string wrong = check(kind, shapes.data(), shapes.size(), &sizes);
  const int64_t hidden_size = kind.step ? hidden_size_of(info) : -1;
  if (wrong.empty() && kind.step) wrong = check_hidden_size(hidden_size, sizes.hidden);
  const void* none[9] = {};
  bool w_zero = true, r_zero = true;
  if (wrong.empty()) wrong = check_weights(kind, constants.data(), none, &w_zero, &r_zero);
  if (!wrong.empty()) return fail(kind, node, wrong, true);
  Kernel* k = new Kernel{&kind, node, Path(chosen.load())};
  for (int i = 0; i < sl.count; ++i) {
    k->seen[i] = constants[size_t(i)].data;
    k->known[i] = constants[size_t(i)];
  }
  k->w_zero = w_zero;
  k->r_zero = r_zero;
  k->hidden_size = hidden_size;
  for (int i : {kind.quantized ? -1 : sl.w, kind.float_r ? sl.r : -1}) {   // float: packed once
    if (kind.family == DENSE || i < 0 || constants[size_t(i)].data == nullptr) continue;
    const Dims& d = constants[size_t(i)].shape.dims;            // (I, G*H), checked above
    std::vector<float>& to = i == sl.r ? k->r_panels : k->w_panels;
    to.resize(size_t(panel_floats(d[0], d[1])));
    pack_panels(static_cast<const float*>(constants[size_t(i)].data), d[0], d[1], to.data());
  }
  for (int i : {kind.quantized ? sl.w : -1, kind.float_r ? -1 : sl.r}) {   // u8: centred once
    if (i < 0 || constants[size_t(i)].data == nullptr) continue;
    std::vector<int8_t>& to = i == sl.r ? k->r_centred : k->w_centred;
    to.resize(size_t(constants[size_t(i)].size));
    centre(static_cast<const uint8_t*>(constants[size_t(i)].data), constants[size_t(i)].size,
           to.data());
  }
  *out = k;
  return nullptr;
}

// ---------------------------------------------------------------- registration

struct Op {
  OrtCustomOp base;
  const Kind* kind;
};

const Kind& kind_of(const OrtCustomOp* op) { return *reinterpret_cast<const Op*>(op)->kind; }

OrtStatus* create_kernel(const OrtCustomOp* op, const OrtApi*, const OrtKernelInfo* info,
                         void** kernel) {
  Kernel* k = nullptr;
  OrtStatus* s = create(kind_of(op), info, &k);
  *kernel = k;
  return s;
}
// Required to be there; ONNX Runtime 1.16 and later call the V2 entry points, which report errors.
void* create_kernel_v1(const OrtCustomOp* op, const OrtApi*, const OrtKernelInfo* info) {
  Kernel* k = nullptr;
  OrtStatus* s = create(kind_of(op), info, &k);
  if (s) api->ReleaseStatus(s);
  return k;
}
OrtStatus* compute_v2(void* kernel, OrtKernelContext* ctx) {
  if (kernel == nullptr) return api->CreateStatus(ORT_FAIL, "ai.edgernn: the node was refused");
  return compute(*static_cast<const Kernel*>(kernel), ctx);
}
void compute_v1(void* kernel, OrtKernelContext* ctx) {
  OrtStatus* s = compute_v2(kernel, ctx);
  if (s) api->ReleaseStatus(s);
}
void destroy(void* kernel) { delete static_cast<Kernel*>(kernel); }
const char* name(const OrtCustomOp* op) { return kind_of(op).name; }
const char* provider(const OrtCustomOp*) { return "CPUExecutionProvider"; }
size_t inputs(const OrtCustomOp* op) { return size_t(slots_of(kind_of(op)).count); }
size_t outputs(const OrtCustomOp* op) { return kind_of(op).family == LSTM ? 2 : 1; }
int input_type(const OrtCustomOp* op, size_t i) {
  const Kind& k = kind_of(op);
  const Slots sl = slots_of(k);
  if ((int(i) == sl.r && !k.float_r) || (int(i) == sl.w && k.quantized)) return ELEMENT_UINT8;
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

struct Ops {
  Op op[kKindCount];
  Ops() {
    for (int i = 0; i < kKindCount; ++i) op[i] = make(kKinds[i]);
  }
};
Ops ops;

}  // namespace

extern "C" __attribute__((visibility("default")))
OrtStatus* RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* base) {
  api = base->GetApi(kApiVersion);
  if (api == nullptr) return nullptr;   // an ONNX Runtime older than 1.17: the functions run
  chosen = choose_path();
  OrtCustomOpDomain* domain = nullptr;
  OrtStatus* s = api->CreateCustomOpDomain("ai.edgernn", &domain);
  for (Op& op : ops.op)
    if (!s) s = api->CustomOpDomain_Add(domain, &op.base);
  return s ? s : api->AddCustomOpDomain(options, domain);
}

#include "tools.h"   // the library's entry points for edgernn's own tools
