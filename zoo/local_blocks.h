// The convolutional blocks of EfficientViT (the reference code's DSConv, MBConv, FusedMBConv, ResBlock; docs/models.md). Each takes per-conv bias, norm and
// activation settings, as the reference does; make_local_block() applies the "normal" and
// "fewer_norm" patterns of the reference code.
#pragma once
#include <array>

#include "zoo/layers.h"

namespace evit::zoo {

template <size_t N>
struct PerConv {
  std::array<bool, N> bias{};
  std::array<NormSpec, N> norm{};
  std::array<std::string, N> act{};
};

// depth_conv (k×k depthwise, stride) -> point_conv (1×1).
class DSConv : public nn::Module, public AddsShortcut {
 public:
  DSConv(int64_t in, int64_t out, int64_t kernel, int64_t stride, const PerConv<2>& p);
  // Without grad mode, on a large CPU input: one inverted_bottleneck without expansion.
  Tensor forward(const Tensor& x) override { return forward_plus(x, Tensor()); }
  Tensor forward_plus(const Tensor& x, const Tensor& shortcut) override;

 private:
  std::shared_ptr<ConvLayer> depth_conv_, point_conv_;
  int64_t stride_;
};

// inverted_conv (1×1 in->mid) -> depth_conv (k×k depthwise, stride) -> point_conv (1×1 mid->out).
class MBConv : public nn::Module, public AddsShortcut {
 public:
  MBConv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t mid, const PerConv<3>& p);
  // Without grad mode, on a large CPU input: one inverted_bottleneck (the middle tensors never
  // exist whole).
  Tensor forward(const Tensor& x) override { return forward_plus(x, Tensor()); }
  Tensor forward_plus(const Tensor& x, const Tensor& shortcut) override;

 private:

  std::shared_ptr<ConvLayer> inverted_conv_, depth_conv_, point_conv_;
  int64_t stride_;
};

// spatial_conv (k×k in->mid, stride) -> point_conv (1×1 mid->out).
class FusedMBConv : public nn::Module, public AddsShortcut {
 public:
  FusedMBConv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t mid,
              const PerConv<2>& p);
  Tensor forward(const Tensor& x) override { return forward_plus(x, Tensor()); }
  Tensor forward_plus(const Tensor& x, const Tensor& shortcut) override;

 private:
  std::shared_ptr<ConvLayer> spatial_conv_, point_conv_;
};

// conv1 (k×k in->mid, stride) -> conv2 (k×k mid->out).
class ResBlock : public nn::Module, public AddsShortcut {
 public:
  ResBlock(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t mid, const PerConv<2>& p);
  Tensor forward(const Tensor& x) override { return forward_plus(x, Tensor()); }
  Tensor forward_plus(const Tensor& x, const Tensor& shortcut) override;

 private:
  std::shared_ptr<ConvLayer> conv1_, conv2_;
};

// "ds" (DSConv), "mb" (MBConv), "fmb" (FusedMBConv), "res" (ResBlock) with mid = round(in·expand)
// and the normal or fewer_norm pattern. The final conv never has an activation.
std::shared_ptr<nn::Module> make_local_block(const std::string& type, int64_t in, int64_t out,
                                             int64_t stride, double expand, const NormSpec& norm,
                                             const std::string& act, bool fewer_norm);

}  // namespace evit::zoo
