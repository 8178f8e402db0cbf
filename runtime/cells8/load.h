// What an ai.edgernn node's kernel learns from ONNX Runtime while the session is created: its
// inputs' shapes (initializers whole, with their data), its name, a Step node's hidden_size.
#pragma once
#include <string.h>

#include <string>
#include <vector>

#include "checks.h"
#include "ort_abi.h"
#include "tensors.h"

namespace edgernn {

// The node's inputs as the session knows them while it is created: initializers whole (their data
// too), the others as declared or inferred.
inline OrtStatus* load_shapes(const OrtKernelInfo* info, size_t n, std::vector<Shape>* shapes,
                       std::vector<Tensor>* constants) {
  shapes->assign(n, Shape());
  constants->assign(n, Tensor());
  for (size_t i = 0; i < n; ++i) {
    int is_constant = 0;
    const OrtValue* value = nullptr;
    if (OrtStatus* s = api->KernelInfoGetConstantInput_tensor(info, i, &is_constant, &value))
      return s;
    if (is_constant && value) {
      if (OrtStatus* s = describe(value, &(*constants)[i])) return s;
      (*shapes)[i] = (*constants)[i].shape;
      continue;
    }
    OrtTypeInfo* type = nullptr;
    if (OrtStatus* s = api->KernelInfo_GetInputTypeInfo(info, i, &type)) return s;
    const OrtTensorTypeAndShapeInfo* tensor = nullptr;
    OrtStatus* s = api->CastTypeInfoToTensorInfo(type, &tensor);
    if (!s && tensor) read_shape(tensor, true, &(*shapes)[i]);
    api->ReleaseTypeInfo(type);
    if (s) return s;
  }
  return nullptr;
}

inline std::string node_name(const OrtKernelInfo* info) {
  size_t size = 0;
  OrtStatus* s = api->KernelInfo_GetNodeName(info, nullptr, &size);
  if (s || size == 0 || size > 4096) {
    if (s) api->ReleaseStatus(s);
    return "";
  }
  std::string name(size, '\0');
  s = api->KernelInfo_GetNodeName(info, &name[0], &size);
  if (s) {
    api->ReleaseStatus(s);
    return "";
  }
  name.resize(strnlen(name.c_str(), name.size()));
  return name;
}

// A Step node's hidden_size attribute (its function's LSTM/GRU/RNN node reads it); -1 if absent.
inline int64_t hidden_size_of(const OrtKernelInfo* info) {
  int64_t value = -1;
  if (OrtStatus* s = api->KernelInfoGetAttribute_int64(info, "hidden_size", &value)) {
    api->ReleaseStatus(s);
    return -1;
  }
  return value;
}

}  // namespace edgernn
