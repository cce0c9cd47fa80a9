#include "zoo/local_blocks.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "nn/macs.h"

namespace evit::zoo {
namespace {
ConvLayerOptions conv_opts(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t groups,
                           bool bias, const NormSpec& norm, const std::string& act) {
  ConvLayerOptions o{in, out, k, stride};
  o.groups = groups;
  o.bias = bias;
  o.norm = norm;
  o.act = act;
  return o;
}

// A block of [1×1 expansion ->] depthwise -> 1×1 projection as one inverted_bottleneck, in
// inference on a large input; nullopt where its layers should run one after the other.
std::optional<Tensor> fused_block_inference(const Tensor& x, ConvLayer* expand, ConvLayer& depth, ConvLayer& point,
                                            int64_t stride, const Tensor& shortcut) {
  // Below this many values in the widest middle tensor (4 MB in f32) it stays in cache between
  // the convolutions anyway, and the strips' halo rows and smaller products would cost more
  // than the fusion saves (EfficientViT-B1 at 224: 10.5 -> 11.8 ms with a 100 K threshold).
  constexpr int64_t kMinMiddleValues = int64_t{1} << 20;
  if (GradMode::is_enabled() || x.dim() != 4 || !x.device().is_cpu() ||
      (x.dtype() != DType::f32 && x.dtype() != DType::f64))
    return std::nullopt;
  std::optional<ConvStage> e = expand ? expand->inference_stage() : ConvStage{};
  if (!e) return std::nullopt;
  const int64_t mid = e->w.defined() ? e->w.size(0) : x.size(1);
  if (mid * x.size(2) * x.size(3) < kMinMiddleValues) return std::nullopt;
  auto d = depth.inference_stage(), p = point.inference_stage();
  if (!d || !p) return std::nullopt;
  Tensor y = inverted_bottleneck(x, *e, *d, stride, *p, shortcut);
  // The multiply-adds of the convolutions, as ConvLayer counts them.
  const int64_t k = d->w.size(2), out_positions = y.size(0) * y.size(2) * y.size(3);
  const int64_t expand_macs = e->w.defined() ? x.size(0) * x.size(2) * x.size(3) * mid * x.size(1) : 0;
  nn::MacCounter::add(expand_macs + out_positions * mid * k * k + out_positions * y.size(1) * mid);
  return y;
}

}  // namespace

DSConv::DSConv(int64_t in, int64_t out, int64_t k, int64_t stride, const PerConv<2>& p)
    : nn::Module("DSConv"), stride_(stride) {
  depth_conv_ = register_module("depth_conv", std::make_shared<ConvLayer>(
      conv_opts(in, in, k, stride, in, p.bias[0], p.norm[0], p.act[0])));
  point_conv_ = register_module("point_conv", std::make_shared<ConvLayer>(
      conv_opts(in, out, 1, 1, 1, p.bias[1], p.norm[1], p.act[1])));
}
Tensor DSConv::forward_plus(const Tensor& x, const Tensor& shortcut) {
  if (auto y = fused_block_inference(x, nullptr, *depth_conv_, *point_conv_, stride_, shortcut)) return *y;
  return point_conv_->forward_plus(depth_conv_->forward(x), shortcut);
}

MBConv::MBConv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t mid, const PerConv<3>& p)
    : nn::Module("MBConv"), stride_(stride) {
  inverted_conv_ = register_module("inverted_conv", std::make_shared<ConvLayer>(
      conv_opts(in, mid, 1, 1, 1, p.bias[0], p.norm[0], p.act[0])));
  depth_conv_ = register_module("depth_conv", std::make_shared<ConvLayer>(
      conv_opts(mid, mid, k, stride, mid, p.bias[1], p.norm[1], p.act[1])));
  point_conv_ = register_module("point_conv", std::make_shared<ConvLayer>(
      conv_opts(mid, out, 1, 1, 1, p.bias[2], p.norm[2], p.act[2])));
}
Tensor MBConv::forward_plus(const Tensor& x, const Tensor& shortcut) {
  if (auto y = fused_block_inference(x, inverted_conv_.get(), *depth_conv_, *point_conv_, stride_, shortcut))
    return *y;
  return point_conv_->forward_plus(depth_conv_->forward(inverted_conv_->forward(x)), shortcut);
}
FusedMBConv::FusedMBConv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t mid,
                         const PerConv<2>& p)
    : nn::Module("FusedMBConv") {
  spatial_conv_ = register_module("spatial_conv", std::make_shared<ConvLayer>(
      conv_opts(in, mid, k, stride, 1, p.bias[0], p.norm[0], p.act[0])));
  point_conv_ = register_module("point_conv", std::make_shared<ConvLayer>(
      conv_opts(mid, out, 1, 1, 1, p.bias[1], p.norm[1], p.act[1])));
}
Tensor FusedMBConv::forward_plus(const Tensor& x, const Tensor& shortcut) {
  return point_conv_->forward_plus(spatial_conv_->forward(x), shortcut);
}

ResBlock::ResBlock(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t mid, const PerConv<2>& p)
    : nn::Module("ResBlock") {
  conv1_ = register_module("conv1", std::make_shared<ConvLayer>(
      conv_opts(in, mid, k, stride, 1, p.bias[0], p.norm[0], p.act[0])));
  conv2_ = register_module("conv2", std::make_shared<ConvLayer>(
      conv_opts(mid, out, k, 1, 1, p.bias[1], p.norm[1], p.act[1])));
}
Tensor ResBlock::forward_plus(const Tensor& x, const Tensor& shortcut) {
  return conv2_->forward_plus(conv1_->forward(x), shortcut);
}

std::shared_ptr<nn::Module> make_local_block(const std::string& type, int64_t in, int64_t out,
                                             int64_t stride, double expand, const NormSpec& norm,
                                             const std::string& act, bool fewer_norm) {
  // Python's round() of in·expand; every product in the model zoo is an integer.
  const int64_t mid = static_cast<int64_t>(std::nearbyint(static_cast<double>(in) * expand));
  if (type == "mb") {
    PerConv<3> p;
    p.bias = fewer_norm ? std::array<bool, 3>{true, true, false} : std::array<bool, 3>{};
    p.norm = fewer_norm ? std::array<NormSpec, 3>{NormSpec{}, NormSpec{}, norm}
                        : std::array<NormSpec, 3>{norm, norm, norm};
    p.act = {act, act, ""};
    return std::make_shared<MBConv>(in, out, 3, stride, mid, p);
  }
  PerConv<2> p;
  p.bias = fewer_norm ? std::array<bool, 2>{true, false} : std::array<bool, 2>{};
  p.norm = fewer_norm ? std::array<NormSpec, 2>{NormSpec{}, norm} : std::array<NormSpec, 2>{norm, norm};
  p.act = {act, ""};
  if (type == "ds") return std::make_shared<DSConv>(in, out, 3, stride, p);
  if (type == "fmb") return std::make_shared<FusedMBConv>(in, out, 3, stride, mid, p);
  if (type == "res") return std::make_shared<ResBlock>(in, out, 3, stride, mid, p);
  EVIT_THROW("unknown local block type '", type, "' (known: ds, mb, fmb, res)");
}

}  // namespace evit::zoo
