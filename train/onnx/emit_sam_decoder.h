// The SAM prompt encoder + mask decoder graph (emit_sam_decoder.cpp has its interface).
#pragma once
#include "train/onnx/onnx_emitter.h"
#include "zoo/sam.h"

namespace evit::train {

// Example inputs the emitters run on: image embeddings [1, 256, 64, 64], point coordinates
// [B, N, 2] and labels [B, N] (each set ending with a padding point or a box's two corners).
struct SamDecoderInputs {
  Tensor embeddings, coords, labels;
};
// evit's values for them: all mask logits [B, 4, 256, 256], IoU predictions [B, 4], and the
// prompt tokens [B, N, 256] its prompt encoder made.
struct SamDecoderOutputs {
  Tensor masks, iou, sparse;
};

// Declares the graph's inputs and outputs and emits every node between them.
SamDecoderOutputs emit_sam_decoder(zoo::EfficientViTSam& sam, OnnxEmitter& e, const SamDecoderInputs& in);

}  // namespace evit::train
