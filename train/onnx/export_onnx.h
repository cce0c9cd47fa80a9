// ONNX export of evit's models for deployment (ONNX Runtime, TensorRT): each module writes its
// own nodes from its BatchNorm-folded weights (train/onnx/onnx_emitter.h), the graph goes through
// the ONNX checker and strict shape inference, and the bytes are returned for writing.
//
// Graph interfaces follow the official EfficientViT exports: `input` [batch, 3, H, W] -> `output`
// (classification logits, segmentation logits at stride 8, or the super-resolved image), and for
// the SAM models the image encoder, `input_image` [batch, 3, S, S] -> `image_embeddings`
// [batch, 256, 64, 64] (S = 512 for L0-L2, 1024 for XL0/XL1). The batch is a number or the
// symbolic dimension "batch"; H and W are fixed at export.
#pragma once
#include <cstdint>
#include <string>

#include "train/onnx/onnx_graph.h"
#include "zoo/models.h"

namespace evit::train {

struct OnnxExportOptions {
  int64_t opset = 0;              // 0: the official exports' (11; 17 for SAM)
  int64_t height = 0, width = 0;  // 0: the task's default input size
  int64_t batch = 1;              // 0: dynamic
  bool half = false;              // f16 weights and activations (LiteMLA's attention stays f32)
  // SAM models: the prompt encoder + mask decoder graph instead of the image encoder's
  // (train/onnx/emit_sam_decoder.cpp: image_embeddings, point_coords, point_labels -> masks,
  // iou_predictions, with a dynamic number of prompt sets and points; f32).
  bool sam_decoder = false;
};

// The opsets evit writes: 11 (what the official classification/segmentation exports use) up to
// 17, the newest the ONNX library it builds with knows.
inline constexpr int64_t kOnnxMinOpset = 11, kOnnxMaxOpset = 17;

struct OnnxExportResult {
  std::string bytes;       // the .onnx file
  OnnxCheckReport report;  // checker + shape inference
  // The inputs the emitters ran on and evit's outputs for them (what the graph must reproduce),
  // by graph input / output name.
  TensorMap example_inputs, example_outputs;
  Tensor example_input, example_output;  // the first of each (image graphs have one)
};

// Exports `model` (put in eval mode; its weights are not changed). `name` is the registry name,
// used in errors and the graph name. Throws naming the option at fault for an unsupported opset,
// input size or batch, and naming the module for a module type without an emitter.
OnnxExportResult export_onnx(zoo::Model& model, const std::string& name, const OnnxExportOptions& options);

// The input size a task's export uses when none is given: 224x224 (classification), 512x1024
// (Cityscapes segmentation), 512x512 (ADE20K segmentation), 256x256 (super-resolution input),
// the encoder's input side for SAM.
std::pair<int64_t, int64_t> default_onnx_input_size(const std::string& model_name);

}  // namespace evit::train
