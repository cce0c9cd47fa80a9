#include "train/export.h"

#include <cmath>
#include <vector>

#include "autograd/grad_mode.h"
#include "ops/pointwise.h"
#include "zoo/layers.h"

namespace evit::train {
namespace {

// The ConvLayers whose norm is a BatchNorm2d, with their module names.
struct Foldable {
  std::string name;  // "" for the root module
  std::shared_ptr<zoo::ConvLayer> layer;
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::BatchNorm2d> bn;
};

std::vector<Foldable> find_foldable(nn::Module& model) {
  std::vector<Foldable> out;
  for (auto& [name, m] : model.named_modules()) {
    auto layer = std::dynamic_pointer_cast<zoo::ConvLayer>(m);
    if (!layer) continue;
    auto bn = std::dynamic_pointer_cast<nn::BatchNorm2d>(layer->norm());
    if (!bn) continue;
    auto conv = std::dynamic_pointer_cast<nn::Conv2d>(layer->conv());
    EVIT_CHECK(conv != nullptr, "fold_batchnorm: ConvLayer '", name, "' has no Conv2d");
    out.push_back({name, layer, conv, bn});
  }
  return out;
}

std::string key_prefix(const std::string& name) { return name.empty() ? "" : name + "."; }

}  // namespace

FoldedConv fold_conv_bn(const nn::Conv2d& conv, const nn::BatchNorm2d& bn) {
  const Tensor& w = conv.weight;
  const int64_t out = w.size(0);
  EVIT_CHECK(bn.running_mean.numel() == out && bn.running_var.numel() == out && bn.weight.numel() == out &&
                 bn.bias.numel() == out,
             "fold_conv_bn: conv has ", out, " output channels but BatchNorm has ", bn.running_mean.numel());
  const std::vector<double> wv = w.to_vector<double>(), gamma = bn.weight.to_vector<double>(),
                            beta = bn.bias.to_vector<double>(), mean = bn.running_mean.to_vector<double>(),
                            var = bn.running_var.to_vector<double>();
  std::vector<double> cb(static_cast<size_t>(out), 0.0);
  if (conv.bias.defined()) cb = conv.bias.to_vector<double>();
  const int64_t per = w.numel() / out;
  std::vector<double> fw(wv.size()), fb(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    const double s = gamma[o] / std::sqrt(var[o] + bn.eps);
    for (int64_t i = 0; i < per; ++i) fw[o * per + i] = wv[o * per + i] * s;
    fb[o] = beta[o] - mean[o] * s + cb[o] * s;
  }
  TensorOptions opt(w.dtype());
  return {from_vector(fw, w.sizes(), opt).to(w.device()), from_vector(fb, {out}, opt).to(w.device())};
}

TensorMap export_folded(nn::Module& model) {
  TensorMap state = model.state_dict();
  for (const Foldable& f : find_foldable(model)) {
    const std::string p = key_prefix(f.name);
    for (auto it = state.lower_bound(p + "norm."); it != state.end() && it->first.rfind(p + "norm.", 0) == 0;)
      it = state.erase(it);
    FoldedConv fc = fold_conv_bn(*f.conv, *f.bn);
    state[p + "conv.weight"] = fc.weight;
    state[p + "conv.bias"] = fc.bias;
  }
  return state;
}

int64_t fold_batchnorm(nn::Module& model) {
  NoGradGuard no_grad;
  auto layers = find_foldable(model);
  for (const Foldable& f : layers) {
    FoldedConv fc = fold_conv_bn(*f.conv, *f.bn);
    // In place, so every alias of the weight (optimizer state, EMA) sees the folded values.
    copy_(f.conv->weight, fc.weight);
    if (f.conv->bias.defined()) copy_(f.conv->bias, fc.bias);
    else f.conv->bias = f.conv->register_parameter("bias", fc.bias);
    f.layer->drop_norm();
  }
  return static_cast<int64_t>(layers.size());
}

}  // namespace evit::train
