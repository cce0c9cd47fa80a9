// Whole models on CUDA against the same models on the CPU ([cuda], hidden: tools/gpu_check.sh):
// every op of a network forward and backward at once, in train and eval mode, and autocast.
#include "autograd/grad_mode.h"
#include "core/generator.h"
#include "ops/autocast.h"
#include "ops/ops.h"
#include "tests/support/cuda_compare.h"
#include "zoo/models.h"

using namespace evit;
using evit::test::cuda0;

namespace {

// Builds the model twice with the same weights (one copy moved to the GPU), runs a training
// forward + backward of sum(out * w) on both, and compares outputs and every parameter gradient.
void require_model_matches(const std::string& name, const Shape& input_shape, double rtol, double atol) {
  INFO(name);
  auto cpu = zoo::create_model(name);
  auto gpu = zoo::create_model(name);
  test::fill_deterministic(*cpu);
  test::fill_deterministic(*gpu);
  gpu->to(cuda0());
  Tensor x = test::sine_input(input_shape);
  for (bool training : {true, false}) {
    INFO((training ? "train mode" : "eval mode"));
    if (training) cpu->train(), gpu->train();
    else cpu->eval(), gpu->eval();
    for (auto* m : {cpu.get(), gpu.get()})
      for (auto& [k, p] : m->named_parameters()) p.set_grad(Tensor());
    Tensor yc = cpu->forward(x);
    Tensor yg = gpu->forward(x.to(cuda0()));
    REQUIRE(yg.device() == cuda0());
    EVIT_REQUIRE_CLOSE(yg.detach().to(kCPU), yc.detach(), rtol, atol);
    if (!training) continue;
    Generator g(3);
    Tensor w = uniform(yc.sizes(), -1, 1, DType::f32, &g);
    yc.backward(w);
    yg.backward(w.to(cuda0()));
    auto pc = cpu->named_parameters(), pg = gpu->named_parameters();
    REQUIRE(pc.size() == pg.size());
    for (size_t i = 0; i < pc.size(); ++i) {
      INFO("gradient of " << pc[i].first);
      REQUIRE(pg[i].second.grad().defined());
      EVIT_REQUIRE_CLOSE(pg[i].second.grad().to(kCPU), pc[i].second.grad(), rtol, atol);
    }
  }
}

}  // namespace

TEST_CASE("EfficientViT models on CUDA match the CPU forward and backward", "[.][cuda][cuda_models]") {
  EVIT_REQUIRE_GPU();
  // Tolerances: whole networks chain hundreds of reductions whose order differs between the
  // backends; BN in training mode divides by small batch variances, amplifying that.
  require_model_matches("efficientvit-b0", {2, 3, 64, 64}, 2e-3, 2e-4);
  require_model_matches("efficientvit-seg-b0-cityscapes", {1, 3, 64, 96}, 2e-3, 2e-4);
  require_model_matches("efficientvit-l1", {2, 3, 64, 64}, 2e-3, 2e-4);
  require_model_matches("efficientvit-sr-x2", {1, 3, 24, 20}, 2e-3, 2e-4);
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
