// Counting multiply-accumulates (MACs) the way the EfficientViT paper does (docs/models.md): convolutions,
// linear layers and the two matmuls of each linear-attention head; norms, activations, pooling
// and interpolation are not counted.
//
//   MacCounter counter;          // counts the forward passes run while it lives (this thread)
//   model->forward(x);
//   counter.total();
#pragma once
#include <cstdint>

namespace evit::nn {

class MacCounter {
 public:
  MacCounter();
  ~MacCounter();
  MacCounter(const MacCounter&) = delete;
  MacCounter& operator=(const MacCounter&) = delete;
  int64_t total() const { return total_; }

  // Called by the layers that count; no-op when no counter is active.
  static void add(int64_t macs);

 private:
  int64_t total_ = 0;
  MacCounter* previous_;
};

}  // namespace evit::nn
