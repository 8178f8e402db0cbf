// The slice of ONNX Runtime's C API that a custom-op library needs, declared here so that the
// library builds with a plain C++ compiler and no ONNX Runtime headers.
//
// ONNX Runtime hands a library a table of function pointers (OrtApi) whose order is part of its
// stable ABI: entries are only ever appended. We ask for version 17 of that table (ONNX Runtime
// 1.17, the package's floor) and declare its entries up to the last one we call, unused ones as
// padding. Each entry is commented with its 1-based position in the table.
// tests/exporters/test_cells8.py exercises every entry declared here against the installed
// ONNX Runtime, so a shifted position fails there, not on a device.
#pragma once
#include <stddef.h>
#include <stdint.h>

extern "C" {

struct OrtStatus;
struct OrtValue;
struct OrtKernelContext;
struct OrtKernelInfo;
struct OrtCustomOpDomain;
struct OrtSessionOptions;
struct OrtTensorTypeAndShapeInfo;
struct OrtTypeInfo;
struct OrtShapeInferContext;                 // in OrtCustomOp's layout only

enum { ORT_OK = 0, ORT_FAIL = 1, ORT_INVALID_ARGUMENT = 2 };            // OrtErrorCode
enum { ELEMENT_FLOAT = 1, ELEMENT_UINT8 = 2 };                         // ONNXTensorElementDataType

typedef void* Unused;

struct OrtApi {
  OrtStatus* (*CreateStatus)(int code, const char* message);                              // 1
  Unused unused_2_26[25];
  OrtStatus* (*CreateCustomOpDomain)(const char* domain, OrtCustomOpDomain** out);        // 27
  OrtStatus* (*CustomOpDomain_Add)(OrtCustomOpDomain* domain, const void* op);           // 28
  OrtStatus* (*AddCustomOpDomain)(OrtSessionOptions* options, OrtCustomOpDomain* domain); // 29
  Unused unused_30_51[22];
  OrtStatus* (*GetTensorMutableData)(OrtValue* value, void** out);                        // 52
  Unused unused_53_55[3];
  OrtStatus* (*CastTypeInfoToTensorInfo)(const OrtTypeInfo* info,
                                         const OrtTensorTypeAndShapeInfo** out);          // 56
  Unused unused_57_60[4];
  OrtStatus* (*GetTensorElementType)(const OrtTensorTypeAndShapeInfo* info, int* out);    // 61
  OrtStatus* (*GetDimensionsCount)(const OrtTensorTypeAndShapeInfo* info, size_t* out);   // 62
  OrtStatus* (*GetDimensions)(const OrtTensorTypeAndShapeInfo* info, int64_t* dims,
                              size_t count);                                              // 63
  OrtStatus* (*GetSymbolicDimensions)(const OrtTensorTypeAndShapeInfo* info,
                                      const char** names, size_t count);                  // 64
  Unused unused_65;
  OrtStatus* (*GetTensorTypeAndShape)(const OrtValue* value,
                                      OrtTensorTypeAndShapeInfo** out);                   // 66
  Unused unused_67_86[20];
  OrtStatus* (*KernelInfoGetAttribute_int64)(const OrtKernelInfo* info, const char* name,
                                             int64_t* out);                               // 87
  Unused unused_88;
  OrtStatus* (*KernelContext_GetInputCount)(const OrtKernelContext* context, size_t* out); // 89
  OrtStatus* (*KernelContext_GetOutputCount)(const OrtKernelContext* context,
                                             size_t* out);                                // 90
  OrtStatus* (*KernelContext_GetInput)(const OrtKernelContext* context, size_t index,
                                       const OrtValue** out);                             // 91
  OrtStatus* (*KernelContext_GetOutput)(OrtKernelContext* context, size_t index,
                                        const int64_t* dims, size_t count,
                                        OrtValue** out);                                  // 92
  Unused unused_93;
  void (*ReleaseStatus)(OrtStatus* status);                                               // 94
  Unused unused_95_98[4];
  void (*ReleaseTypeInfo)(OrtTypeInfo* info);                                             // 99
  void (*ReleaseTensorTypeAndShapeInfo)(OrtTensorTypeAndShapeInfo* info);                 // 100
  Unused unused_101_230[130];
  OrtStatus* (*KernelInfo_GetInputCount)(const OrtKernelInfo* info, size_t* out);         // 231
  Unused unused_232_234[3];
  OrtStatus* (*KernelInfo_GetInputTypeInfo)(const OrtKernelInfo* info, size_t index,
                                            OrtTypeInfo** out);                           // 235
  Unused unused_236_244[9];
  OrtStatus* (*KernelInfo_GetNodeName)(const OrtKernelInfo* info, char* out,
                                       size_t* size);                                     // 245
  Unused unused_246_249[4];
  OrtStatus* (*KernelInfoGetConstantInput_tensor)(const OrtKernelInfo* info, size_t index,
                                                  int* is_constant,
                                                  const OrtValue** out);                  // 250
};

// Each entry at its 1-based position: a miscounted padding fails the build, not a device.
#define EDGERNN_AT(entry, position) \
  static_assert(offsetof(OrtApi, entry) == ((position) - 1) * sizeof(void*), #entry);
EDGERNN_AT(CreateStatus, 1) EDGERNN_AT(CreateCustomOpDomain, 27)
EDGERNN_AT(AddCustomOpDomain, 29) EDGERNN_AT(GetTensorMutableData, 52)
EDGERNN_AT(CastTypeInfoToTensorInfo, 56) EDGERNN_AT(GetTensorElementType, 61)
EDGERNN_AT(GetSymbolicDimensions, 64) EDGERNN_AT(GetTensorTypeAndShape, 66)
EDGERNN_AT(KernelInfoGetAttribute_int64, 87) EDGERNN_AT(KernelContext_GetInputCount, 89)
EDGERNN_AT(KernelContext_GetOutput, 92)
EDGERNN_AT(ReleaseStatus, 94) EDGERNN_AT(ReleaseTypeInfo, 99)
EDGERNN_AT(ReleaseTensorTypeAndShapeInfo, 100) EDGERNN_AT(KernelInfo_GetInputCount, 231)
EDGERNN_AT(KernelInfo_GetInputTypeInfo, 235) EDGERNN_AT(KernelInfo_GetNodeName, 245)
EDGERNN_AT(KernelInfoGetConstantInput_tensor, 250)
#undef EDGERNN_AT

struct OrtApiBase {
  const OrtApi* (*GetApi)(uint32_t version);
  const char* (*GetVersionString)();
};

// One operator's description and callbacks, as ONNX Runtime reads it (version 17 layout: every
// field up to the end is declared, the ones we do not implement left null).
struct OrtCustomOp {
  uint32_t version;
  void* (*CreateKernel)(const OrtCustomOp* op, const OrtApi* api, const OrtKernelInfo* info);
  const char* (*GetName)(const OrtCustomOp* op);
  const char* (*GetExecutionProviderType)(const OrtCustomOp* op);
  int (*GetInputType)(const OrtCustomOp* op, size_t index);
  size_t (*GetInputTypeCount)(const OrtCustomOp* op);
  int (*GetOutputType)(const OrtCustomOp* op, size_t index);
  size_t (*GetOutputTypeCount)(const OrtCustomOp* op);
  void (*KernelCompute)(void* kernel, OrtKernelContext* context);
  void (*KernelDestroy)(void* kernel);
  int (*GetInputCharacteristic)(const OrtCustomOp* op, size_t index);
  int (*GetOutputCharacteristic)(const OrtCustomOp* op, size_t index);
  int (*GetInputMemoryType)(const OrtCustomOp* op, size_t index);
  int (*GetVariadicInputMinArity)(const OrtCustomOp* op);
  int (*GetVariadicInputHomogeneity)(const OrtCustomOp* op);
  int (*GetVariadicOutputMinArity)(const OrtCustomOp* op);
  int (*GetVariadicOutputHomogeneity)(const OrtCustomOp* op);
  OrtStatus* (*CreateKernelV2)(const OrtCustomOp* op, const OrtApi* api,
                               const OrtKernelInfo* info, void** kernel);
  OrtStatus* (*KernelComputeV2)(void* kernel, OrtKernelContext* context);
  OrtStatus* (*InferOutputShapeFn)(const OrtCustomOp* op, OrtShapeInferContext* context);
  int (*GetStartVersion)(const OrtCustomOp* op);
  int (*GetEndVersion)(const OrtCustomOp* op);
};

}  // extern "C"
