// The basic layers of the EfficientViT reference code (docs/models.md), with its attribute names:
// ConvLayer {dropout, conv, norm, act}, LinearLayer {dropout, linear, norm, act},
// OpSequential {op_list}, ResidualBlock {main, shortcut}.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "nn/container.h"
#include "nn/module.h"
#include "ops/conv.h"
#include "ops/norm.h"

namespace evit::zoo {

// A norm by registry name ("bn2d", "ln", "ln2d"); empty = no norm. eps is per model family.
struct NormSpec {
  std::string kind;
  double eps = 1e-5;
  bool none() const { return kind.empty(); }
};
std::shared_ptr<nn::Module> make_norm(const NormSpec& spec, int64_t channels);
// Activation by registry name; "" = none.
std::shared_ptr<nn::Module> make_act_or_null(const std::string& name);
// The batch_norm_act activation of a registry name (gelu: the tanh form), nullopt for those it
// does not fuse.
std::optional<ActivationKind> fusable_norm_activation(const std::string& name);

// A block that a ResidualBlock adds its identity shortcut to. forward_plus(x, s) is
// add(forward(x), s), bit for bit, but may add s inside the block's last pass (the epilogue of
// its final convolution, in inference), which saves the addition's own pass over the output. An
// undefined s adds nothing: forward_plus(x, Tensor()) is forward(x).
class AddsShortcut {
 public:
  virtual ~AddsShortcut() = default;
  virtual Tensor forward_plus(const Tensor& x, const Tensor& shortcut) = 0;
};

struct ConvLayerOptions {
  ConvLayerOptions(int64_t in_channels, int64_t out_channels, int64_t kernel_size = 3, int64_t stride_ = 1)
      : in(in_channels), out(out_channels), kernel(kernel_size), stride(stride_) {}
  int64_t in, out, kernel, stride, dilation = 1, groups = 1;
  bool bias = false;
  double dropout = 0.0;
  NormSpec norm{"bn2d"};
  std::string act = "relu";
};

// [Dropout2d] -> Conv2d (same padding) -> [norm] -> [act].
class ConvLayer : public nn::Module, public AddsShortcut {
 public:
  explicit ConvLayer(const ConvLayerOptions& o);
  Tensor forward(const Tensor& x) override { return forward_plus(x, Tensor()); }
  // In eval mode with its activation fused (or none), the shortcut joins the convolution's
  // epilogue (conv2d_act); otherwise it is added after.
  Tensor forward_plus(const Tensor& x, const Tensor& shortcut) override;

  // Deployment hooks for train/export.cpp (BatchNorm folding): the conv and norm children, and
  // drop_norm(), which unregisters the norm (its keys leave state_dict()) after the caller has
  // folded it into the conv; forward() then runs conv -> act.
  std::shared_ptr<nn::Module> conv() const { return conv_; }
  std::shared_ptr<nn::Module> norm() const { return norm_; }
  void drop_norm();

  // The layer as one convolution followed by its activation, for fused inference kernels
  // (inverted_bottleneck): the weight and bias with eval-mode BatchNorm folded in. nullopt where
  // it is not one: BatchNorm in training mode, another norm, an activation no kernel applies,
  // dropout in training mode.
  std::optional<ConvStage> inference_stage();

 private:
  // Eval-mode BatchNorm folded into the conv: (weight, bias). Without grad mode the fold is
  // cached and reused while the versions of the tensors it was made from are unchanged.
  std::pair<Tensor, Tensor> folded_conv_bn();

  std::shared_ptr<nn::Module> dropout_, conv_, norm_, act_;
  // The activation applied inside another op's passes: in training inside BatchNorm
  // (batch_norm_act: a pass less each way, no normalised tensor kept), in eval inside the
  // convolution with the folded BatchNorm, and without a norm inside the convolution
  // (conv2d_act, which records the two ops in sequence when a gradient is needed).
  std::optional<ActivationKind> fused_act_;
  Tensor folded_w_, folded_b_;
  std::vector<uint64_t> folded_versions_;
};

struct LinearLayerOptions {
  int64_t in = 0, out = 0;
  bool bias = true;
  double dropout = 0.0;
  NormSpec norm{};
  std::string act;
};

// Flattens to [N, features], then [Dropout] -> Linear -> [norm] -> [act].
class LinearLayer : public nn::Module {
 public:
  explicit LinearLayer(const LinearLayerOptions& o);
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<nn::Module> dropout_, linear_, norm_, act_;
};

// Runs its non-null ops in order; they are registered as op_list.0, op_list.1, ...
class OpSequential : public nn::Module {
 public:
  explicit OpSequential(std::vector<std::shared_ptr<nn::Module>> ops);
  Tensor forward(const Tensor& x) override;
  const nn::ModuleList& ops() const { return *op_list_; }

 private:
  std::shared_ptr<nn::ModuleList> op_list_;
};

// main(x) + shortcut(x); with no shortcut just main(x). The shortcut is always an identity here.
// In training mode, drop_path_prob > 0 drops the main branch per sample (stochastic depth).
// A main block that AddsShortcut gets the shortcut to add itself (unless a drop path applies).
class ResidualBlock : public nn::Module {
 public:
  ResidualBlock(std::shared_ptr<nn::Module> main, bool identity_shortcut);
  Tensor forward(const Tensor& x) override;
  bool has_shortcut() const { return shortcut_ != nullptr; }
  double drop_path_prob = 0.0;

 private:
  std::shared_ptr<nn::Module> main_, shortcut_;
};

// Stochastic depth as the reference recipe sets it (docs/training.md): every ResidualBlock with an
// identity shortcut under `backbone.stages`, after skipping the first `skip`, gets
// p·(i+1)/N·factor for i = 0..N-1 (factor: training progress, 0 during warmup -> 1 at the end).
// Returns the number of blocks it set.
int64_t set_drop_path(nn::Module& model, double p, int64_t skip, double factor);

}  // namespace evit::zoo
