// Whole models on CUDA against the same models on the CPU ([cuda], hidden: tools/gpu_check.sh):
// every op of a network forward and backward at once, in train and eval mode, and autocast.
#include <cmath>

#include "autograd/grad_mode.h"
#include "core/generator.h"
#include "ops/autocast.h"
#include "ops/ops.h"
#include "tests/support/cuda_compare.h"
#include "zoo/models.h"

using namespace evit;
using evit::test::cuda0;

namespace {

// A model's output and every parameter gradient of sum(out * w) for fixed random weights w.
struct ForwardBackward {
  Tensor out;
  std::vector<std::pair<std::string, Tensor>> grads;
};

ForwardBackward run_model(nn::Module& m, const Tensor& x, bool training) {
  m.train(training);
  for (auto& [k, p] : m.named_parameters()) p.set_grad(Tensor());
  ForwardBackward r;
  Tensor y = m.forward(x);
  r.out = y.detach().to(kCPU).to(DType::f64);
  Generator g(3);  // the same weights w on every device and dtype
  y.backward(uniform(y.sizes(), -1, 1, DType::f32, &g).to(y.dtype()).to(y.device()));
  for (auto& [k, p] : m.named_parameters()) {
    INFO("gradient of " << k);
    REQUIRE(p.grad().defined());
    r.grads.emplace_back(k, p.grad().to(kCPU).to(DType::f64));
  }
  return r;
}

double l2(const Tensor& t) { return std::sqrt(sum(mul(t, t)).item<double>()); }

// The GPU's f32 result must be about as accurate as the CPU's f32 result, both measured against
// the CPU in f64 (L2 norms): within 8 times the CPU's error, plus 2e-4 of the result's size for
// quantities so well conditioned that the CPU's error is near zero by luck. An indexing or
// synchronisation bug gives errors of the order of the result itself.
void require_as_accurate(const Tensor& gpu32, const Tensor& cpu32, const Tensor& ref64) {
  const double e_gpu = l2(sub(gpu32, ref64)), e_cpu = l2(sub(cpu32, ref64)), size = l2(ref64);
  INFO("f32 error against f64: GPU " << e_gpu << ", CPU " << e_cpu << ", norm of the f64 result " << size);
  REQUIRE(e_gpu <= 8 * e_cpu + 2e-4 * size);
}

// Training-mode gradients, taken together. BatchNorm normalising a handful of values per
// channel (the last stages of these small inputs) makes single gradients ill-conditioned: on
// the CPU, a 1e-6 relative change of the input moves some of them by 160 times the CPU's own
// rounding error, and a BatchNorm bias feeding another BatchNorm has a gradient of pure noise.
// Summed over the model, that change moves the gradients by 3 to 7 times the CPU's error and
// by at most 1e-3 of their size: so the GPU's summed error must stay within 8 times the CPU's
// plus 2e-3 of the size. (Eval mode checks every gradient on its own.)
void require_as_accurate_overall(const std::vector<std::pair<std::string, Tensor>>& gpu32,
                                 const std::vector<std::pair<std::string, Tensor>>& cpu32,
                                 const std::vector<std::pair<std::string, Tensor>>& ref64) {
  double e_gpu = 0, e_cpu = 0, size = 0;
  for (size_t i = 0; i < ref64.size(); ++i) {
    e_gpu += std::pow(l2(sub(gpu32[i].second, ref64[i].second)), 2);
    e_cpu += std::pow(l2(sub(cpu32[i].second, ref64[i].second)), 2);
    size += std::pow(l2(ref64[i].second), 2);
  }
  e_gpu = std::sqrt(e_gpu), e_cpu = std::sqrt(e_cpu), size = std::sqrt(size);
  INFO("all gradients, f32 error against f64: GPU " << e_gpu << ", CPU " << e_cpu << ", norm " << size);
  REQUIRE(e_gpu <= 8 * e_cpu + 2e-3 * size);
}

// Builds the model three times with the same weights: on the CPU in f32 and in f64, and on the
// GPU in f32; runs forward and a backward of sum(out * w) in train and in eval mode, and checks
// the GPU's outputs and parameter gradients against the two CPU results.
void require_model_matches(const std::string& name, const Shape& input_shape) {
  INFO(name);
  auto cpu = zoo::create_model(name), gpu = zoo::create_model(name), ref = zoo::create_model(name);
  for (auto* m : {cpu.get(), gpu.get(), ref.get()}) test::fill_deterministic(*m);
  gpu->to(cuda0());
  ref->to(DType::f64);
  const Tensor x = test::sine_input(input_shape);
  for (bool training : {true, false}) {
    INFO((training ? "train mode" : "eval mode"));
    const ForwardBackward c = run_model(*cpu, x, training);
    const ForwardBackward r = run_model(*ref, x.to(DType::f64), training);
    const ForwardBackward g = run_model(*gpu, x.to(cuda0()), training);
    {
      INFO("output");
      require_as_accurate(g.out, c.out, r.out);
    }
    REQUIRE(g.grads.size() == c.grads.size());
    if (training) {
      require_as_accurate_overall(g.grads, c.grads, r.grads);
      continue;
    }
    for (size_t i = 0; i < c.grads.size(); ++i) {
      INFO("gradient of " << c.grads[i].first);
      require_as_accurate(g.grads[i].second, c.grads[i].second, r.grads[i].second);
    }
  }
}

}  // namespace

TEST_CASE("EfficientViT models on CUDA match the CPU forward and backward", "[.][cuda][cuda_models]") {
  EVIT_REQUIRE_GPU();
  require_model_matches("efficientvit-b0", {2, 3, 64, 64});
  require_model_matches("efficientvit-seg-b0-cityscapes", {1, 3, 64, 96});
  require_model_matches("efficientvit-l1", {2, 3, 64, 64});
  require_model_matches("efficientvit-sr-x2", {1, 3, 24, 20});
}

TEST_CASE("autocast runs whole models on CUDA close to the f32 result", "[.][cuda][cuda_models]") {
  EVIT_REQUIRE_GPU();
  for (DType t : {DType::f16, DType::bf16}) {
    INFO(dtype_name(t));
    auto m = zoo::create_model("efficientvit-b1");
    test::fill_deterministic(*m);
    m->to(cuda0());
    m->eval();
    NoGradGuard no_grad;
    Tensor x = test::sine_input({2, 3, 96, 96}).to(cuda0());
    Tensor ref = m->forward(x).to(kCPU);
    Tensor half;
    {
      AutocastGuard amp(t);
      half = m->forward(x);
    }
    REQUIRE(half.dtype() == DType::f32);
    // 16-bit operands keep 8 (bf16) or 11 (f16) significant bits: compare at that precision.
    EVIT_REQUIRE_CLOSE(half.to(kCPU), ref, t == DType::bf16 ? 6e-2 : 1e-2, 5e-2);
  }
}
