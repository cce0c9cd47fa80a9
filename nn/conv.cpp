#include "nn/conv.h"

#include "nn/init.h"
#include "nn/macs.h"

namespace evit::nn {
namespace {
// Registers `weight` of `shape` and, if asked, a bias of `out` entries, with PyTorch's default
// initialisation (both bounded by 1/sqrt(fan_in) of the weight).
void add_conv_params(Module& m, const Shape& shape, int64_t out, bool with_bias, Generator* gen, Tensor& weight,
                     Tensor& bias) {
  Tensor w = empty(shape);
  init::default_weight_(w, gen);
  weight = m.register_parameter("weight", w);
  if (with_bias) {
    Tensor b = empty({out});
    init::default_bias_(b, init::fan_in(w), gen);
    bias = m.register_parameter("bias", b);
  }
}
}  // namespace

Conv2d::Conv2d(const Conv2dOptions& o, Generator* gen) : Module("Conv2d"), o_(o) {
  EVIT_CHECK(o.groups >= 1 && o.in_channels % o.groups == 0 && o.out_channels % o.groups == 0,
             "Conv2d: in_channels ", o.in_channels, " and out_channels ", o.out_channels,
             " must be divisible by groups ", o.groups);
  add_conv_params(*this, {o.out_channels, o.in_channels / o.groups, o.kernel_size, o.kernel_size}, o.out_channels,
                  o.bias, gen, weight, bias);
}

Tensor Conv2d::forward(const Tensor& x) {
  Tensor y = conv2d(x, weight, bias, o_.stride, o_.padding, o_.dilation, o_.groups);
  // Each output element takes (in/groups)·k² multiply-adds.
  MacCounter::add(y.numel() * weight.size(1) * weight.size(2) * weight.size(3));
  return y;
}

ConvTranspose2d::ConvTranspose2d(const ConvTranspose2dOptions& o, Generator* gen)
    : Module("ConvTranspose2d"), o_(o) {
  EVIT_CHECK(o.groups >= 1 && o.in_channels % o.groups == 0 && o.out_channels % o.groups == 0,
             "ConvTranspose2d: channels must be divisible by groups ", o.groups);
  add_conv_params(*this, {o.in_channels, o.out_channels / o.groups, o.kernel_size, o.kernel_size}, o.out_channels,
                  o.bias, gen, weight, bias);
}

Tensor ConvTranspose2d::forward(const Tensor& x) {
  // Each input element scatters into (out/groups)·k² outputs.
  MacCounter::add(x.numel() * weight.size(1) * weight.size(2) * weight.size(3));
  return conv_transpose2d(x, weight, bias, o_.stride, o_.padding, o_.output_padding, o_.groups,
                          o_.dilation);
}

}  // namespace evit::nn
