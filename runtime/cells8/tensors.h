// ONNX Runtime's side of a node: its API table, a tensor's shape and data as the checks read
// them, and the message that refuses a node.
#pragma once
#include <stdint.h>

#include <string>
#include <vector>

#include "checks.h"
#include "ort_abi.h"

namespace edgernn {

inline const OrtApi* api = nullptr;   // set when a session registers the kernels

// True for success; a failure's status is released (the caller reports its own error).
inline bool ok(OrtStatus* status) {
  if (status) api->ReleaseStatus(status);
  return status == nullptr;
}

inline OrtStatus* fail(const Kind& kind, const std::string& node, const std::string& what,
                bool at_load) {
  std::string text = std::string("ai.edgernn ") + kind.name + " node '" + node + "': " + what;
  text += at_load ? ". The file's weights and graph do not fit together (it was edited, or not "
                    "written by edgernn): export and quantize the model again"
                  : ". This call's inputs do not fit the node's weights";
  return api->CreateStatus(ORT_INVALID_ARGUMENT, text.c_str());
}

// A shape from ONNX Runtime's description; rank 0 taken as "not known" where ``rank0_unknown``
// (how a missing shape reads at load).
// False for a tensor of more than kMaxRank axes too. ``at_load``: the names of symbolic axes are
// read as well (for messages), and rank 0 means "not known".
inline bool read_shape(const OrtTensorTypeAndShapeInfo* info, bool at_load, Shape* out) {
  size_t n = 0;
  if (!ok(api->GetTensorElementType(info, &out->type)) || !ok(api->GetDimensionsCount(info, &n)) ||
      n > kMaxRank)
    return false;
  out->dims.assign(n, -1);
  if (n && !ok(api->GetDimensions(info, out->dims.data(), n))) return false;
  out->ranked = !(at_load && n == 0);
  if (!at_load) return true;
  const char* names[kMaxRank] = {};
  if (n && !ok(api->GetSymbolicDimensions(info, names, n))) return false;
  out->names.assign(n, "");
  for (size_t i = 0; i < n; ++i)
    if (names[i]) out->names[i] = names[i];
  return true;
}

struct Tensor {
  Shape shape;
  int64_t size = 0;
  void* data = nullptr;
};

inline OrtStatus* describe(const OrtValue* value, Tensor* t) {
  OrtTensorTypeAndShapeInfo* info = nullptr;
  if (OrtStatus* s = api->GetTensorTypeAndShape(value, &info)) return s;
  const bool ok = read_shape(info, false, &t->shape);
  api->ReleaseTensorTypeAndShapeInfo(info);
  if (!ok)
    return api->CreateStatus(ORT_INVALID_ARGUMENT, "ai.edgernn: a tensor of more than 8 axes, or "
                                                   "one whose shape cannot be read");
  t->size = count(t->shape.dims, 0, t->shape.dims.size());
  if (t->size < 0) return api->CreateStatus(ORT_FAIL, "ai.edgernn: a tensor is too large");
  if (OrtStatus* s = api->GetTensorMutableData(const_cast<OrtValue*>(value), &t->data)) return s;
  if (t->size > 0 && t->data == nullptr)
    return api->CreateStatus(ORT_FAIL, "ai.edgernn: a tensor has no data");
  return nullptr;
}

}  // namespace edgernn
