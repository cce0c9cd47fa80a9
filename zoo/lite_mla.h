// LiteMLA (multi-scale ReLU linear attention, arXiv 2205.14756) and EfficientViTBlock.
#pragma once
#include <vector>

#include "zoo/layers.h"

namespace evit::zoo {

// qkv (1×1 conv C -> 3T) -> aggreg[s] (depthwise k×k then grouped 1×1 with 3h groups) ->
// concat -> heads of [q; k; v] (head-major) -> linear_attention_qkv (eps 1e-15; the quadratic form
// when H·W <= d) -> proj (1×1 conv to C, BN). Attribute names: qkv, aggreg.<s>.{0,1},
// kernel_func, proj. The concatenation is never made: linear_attention_qkv reads the heads of
// qkv and of each aggregate in turn.
class LiteMLA : public nn::Module, public AddsShortcut {
 public:
  LiteMLA(int64_t in, int64_t out, int64_t dim, const std::vector<int64_t>& scales,
          const NormSpec& proj_norm, double heads_ratio = 1.0, double eps = 1e-15);
  Tensor forward(const Tensor& x) override { return forward_plus(x, Tensor()); }
  // The shortcut is added by the output projection (ConvLayer::forward_plus).
  Tensor forward_plus(const Tensor& x, const Tensor& shortcut) override;
  int64_t heads() const { return heads_; }
  int64_t dim() const { return dim_; }
  double eps() const { return eps_; }

 private:
  int64_t heads_, dim_;
  double eps_;
  std::shared_ptr<nn::Module> qkv_;
  std::shared_ptr<ConvLayer> proj_;
  std::vector<std::shared_ptr<nn::Module>> aggreg_;
};

// context_module = Residual(LiteMLA), local_module = Residual(MBConv fewer_norm, expand e).
class EfficientViTBlock : public nn::Module {
 public:
  EfficientViTBlock(int64_t channels, int64_t dim, double expand, const std::vector<int64_t>& scales,
                    const NormSpec& norm, const std::string& act, double heads_ratio = 1.0);
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<nn::Module> context_module_, local_module_;
};

}  // namespace evit::zoo
