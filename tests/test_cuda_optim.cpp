// Optimizers, EMA, gradient clipping and the loss scaler on CUDA against the same steps on the
// CPU ([cuda], hidden: run by tools/gpu_check.sh on a machine with a GPU). Several steps on a
// few tensors of odd sizes (one spans several 16384-element chunks of the multi-tensor
// kernels), f32 and f64 parameters in one optimizer, CUDA and CPU state compared after each
// step. The update formulas are elementwise and identical on both sides; only FMA contraction
// may differ, hence rtol 1e-6 for f32 (see atol_of).
#include <cmath>
#include <limits>

#include "autograd/grad_mode.h"
#include "core/cuda.h"
#include "core/generator.h"
#include "nn/module.h"
#include "ops/ops.h"
#include "optim/adamw.h"
#include "optim/clip.h"
#include "optim/ema.h"
#include "optim/grad_scaler.h"
#include "optim/sgd.h"
#include "tests/support/cuda_compare.h"

using namespace evit;
using evit::test::cuda0;

namespace {

const std::vector<Shape> kShapes = {{7}, {33, 5}, {3, 17, 19}, {40001}, {1}};

// Parameters (leaves requiring grad) on the CPU and identical copies on CUDA; the last two are
// f64 so one optimizer holds both element types.
struct Params {
  std::vector<Tensor> cpu, gpu;
};

Params make_params(uint64_t seed) {
  Params p;
  for (size_t i = 0; i < kShapes.size(); ++i) {
    Generator g(seed + i);
    const DType t = i + 2 >= kShapes.size() ? DType::f64 : DType::f32;
    Tensor x = uniform(kShapes[i], -1.0, 1.0, t, &g);
    p.cpu.push_back(x.clone().requires_grad_());
    p.gpu.push_back(x.to(cuda0()).requires_grad_());
  }
  return p;
}

// The same random gradients (scaled by `scale`) on both sides; the CUDA gradient of tensor 1 is
// a non-contiguous view, to exercise the contiguous working copies.
void set_grads(Params& p, uint64_t seed, double scale = 1.0) {
  for (size_t i = 0; i < p.cpu.size(); ++i) {
    Generator g(seed * 100 + i);
    Tensor gr = mul(uniform(p.cpu[i].sizes(), -1.0, 1.0, p.cpu[i].dtype(), &g), scale);
    p.cpu[i].set_grad(gr.clone());
    if (i == 1) {
      Tensor t = transpose(gr, 0, 1).contiguous().to(cuda0());
      p.gpu[i].set_grad(transpose(t, 0, 1));
    } else {
      p.gpu[i].set_grad(gr.to(cuda0()));
    }
  }
}

// f32: rtol 1e-6; atol 1e-6 because the compilers may fuse a different multiply-add (one
// rounding of a product, ~6e-8 for the O(1) values here) and a momentum / moving average
// accumulates that over the steps, while cancellation can leave the value itself near 0.
double rtol_of(const Tensor& t) { return t.dtype() == DType::f64 ? 1e-13 : 1e-6; }
double atol_of(const Tensor& t) { return t.dtype() == DType::f64 ? 1e-14 : 1e-6; }

void require_same(const std::vector<Tensor>& gpu, const std::vector<Tensor>& cpu, const char* what) {
  REQUIRE(gpu.size() == cpu.size());
  for (size_t i = 0; i < cpu.size(); ++i) {
    INFO(what << " " << i << " " << cpu[i].desc());
    REQUIRE(gpu[i].device() == cuda0());
    EVIT_REQUIRE_CLOSE(gpu[i].detach().to(kCPU), cpu[i].detach(), rtol_of(cpu[i]), atol_of(cpu[i]));
  }
}

void require_same_state(const TensorMap& gpu, const TensorMap& cpu) {
  REQUIRE(gpu.size() == cpu.size());
  for (auto& [k, t] : cpu) {
    INFO("state " << k);
    REQUIRE(gpu.count(k));
    EVIT_REQUIRE_CLOSE(gpu.at(k).to(kCPU), t, rtol_of(t), atol_of(t));
  }
}

std::vector<Tensor> grads_of(const std::vector<Tensor>& ps) {
  std::vector<Tensor> out;
  for (auto& p : ps) out.push_back(p.grad());
  return out;
}

// Two groups (decayed / not), parameter names p0..p4.
std::vector<optim::ParamGroup> groups_of(const std::vector<Tensor>& ps, double lr, double wd) {
  optim::ParamGroup a{{}, lr, wd}, b{{}, lr * 0.5, 0.0};
  for (size_t i = 0; i < ps.size(); ++i)
    (i % 2 == 0 ? a : b).params.emplace_back(std::string("p").append(std::to_string(i)), ps[i]);
  return {a, b};
}

// A module holding given tensors as parameters / buffers, for EMA.
struct Holder : nn::Module {
  Holder(const std::vector<Tensor>& params, const std::vector<Tensor>& buffers) : Module("Holder") {
    for (size_t i = 0; i < params.size(); ++i)
      register_parameter(std::string("w").append(std::to_string(i)), params[i]);
    for (size_t i = 0; i < buffers.size(); ++i)
      register_buffer(std::string("buf").append(std::to_string(i)), buffers[i]);
  }
};

}  // namespace

TEST_CASE("CUDA AdamW matches the CPU step by step", "[.][cuda][cuda_optim]") {
  EVIT_REQUIRE_GPU();
  Params p = make_params(1);
  optim::AdamW cpu(groups_of(p.cpu, 1e-2, 0.05), {0.9, 0.999, 1e-8});
  optim::AdamW gpu(groups_of(p.gpu, 1e-2, 0.05), {0.9, 0.999, 1e-8});
  for (int s = 0; s < 5; ++s) {
    INFO("step " << s + 1);
    set_grads(p, s + 1);
    if (s == 2) {  // a parameter without gradient is skipped (its step count stays behind)
      p.cpu[3].set_grad(Tensor());
      p.gpu[3].set_grad(Tensor());
    }
    cpu.step();
    gpu.step();
    require_same(p.gpu, p.cpu, "parameter");
    require_same_state(gpu.state_dict(), cpu.state_dict());
  }
  // a CPU state (as read from a checkpoint) loads onto the parameters' device
  optim::AdamW again(groups_of(p.gpu, 1e-2, 0.05));
  again.load_state_dict(cpu.state_dict());
  for (auto& [k, t] : again.state_dict())
    if (t.dtype() != DType::i64) REQUIRE(t.device() == cuda0());
  set_grads(p, 9);
  cpu.step();
  again.step();
  require_same(p.gpu, p.cpu, "parameter after load");
}

TEST_CASE("CUDA SGD matches the CPU step by step in every mode", "[.][cuda][cuda_optim]") {
  EVIT_REQUIRE_GPU();
  struct Case {
    const char* name;
    double lr, wd;
    optim::SGDOptions o;
  };
  const Case cases[] = {
      {"plain", 0.1, 0.0, {}},
      {"weight decay", 0.05, 0.01, {}},
      {"momentum + dampening", 0.1, 1e-3, {0.9, 0.1, false, false}},
      {"nesterov", 0.02, 5e-4, {0.8, 0.0, true, false}},
      {"maximize", 0.03, 0.0, {0.5, 0.0, false, true}},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    Params p = make_params(11);
    optim::SGD cpu(groups_of(p.cpu, c.lr, c.wd), c.o);
    optim::SGD gpu(groups_of(p.gpu, c.lr, c.wd), c.o);
    for (int s = 0; s < 4; ++s) {
      INFO("step " << s + 1);
      set_grads(p, s + 3);
      if (s == 0) {  // no gradient on the first step: the momentum buffer starts one step later
        p.cpu[2].set_grad(Tensor());
        p.gpu[2].set_grad(Tensor());
      }
      cpu.step();
      gpu.step();
      require_same(p.gpu, p.cpu, "parameter");
      require_same_state(gpu.state_dict(), cpu.state_dict());
    }
  }
}

TEST_CASE("CUDA EMA update matches the CPU", "[.][cuda][cuda_optim]") {
  EVIT_REQUIRE_GPU();
  Params p = make_params(21);
  Tensor buf = uniform({17}, 0.0, 2.0, DType::f32);
  Tensor count = full({}, 3.0, DType::i64);  // integer entries are left out
  auto cpu_model = std::make_shared<Holder>(p.cpu, std::vector<Tensor>{buf.clone(), count.clone()});
  auto gpu_model = std::make_shared<Holder>(p.gpu, std::vector<Tensor>{buf.to(cuda0()), count.to(cuda0())});
  optim::EMA cpu(*cpu_model, {0.99, 10.0});
  optim::EMA gpu(*gpu_model, {0.99, 10.0});
  REQUIRE(gpu.shadow().size() == cpu.shadow().size());
  for (int s = 1; s <= 4; ++s) {
    INFO("update " << s);
    // move the models identically
    NoGradGuard no_grad;
    Generator g1(s), g2(s);
    for (auto& [name, t] : cpu_model->state_dict())
      if (is_floating(t.dtype())) copy_(t, uniform(t.sizes(), -1.0, 1.0, t.dtype(), &g1));
    for (auto& [name, t] : gpu_model->state_dict())
      if (is_floating(t.dtype())) copy_(t, uniform(t.sizes(), -1.0, 1.0, t.dtype(), &g2).to(cuda0()));
    cpu.update(*cpu_model, s);
    gpu.update(*gpu_model, s);
    require_same_state(gpu.state_dict(), cpu.state_dict());
  }
  // a CPU state loads onto the model's device
  optim::EMA again(*gpu_model, {0.99, 10.0});
  again.load_state_dict(cpu.state_dict());
  for (auto& [k, t] : again.state_dict()) REQUIRE(t.device() == cuda0());
}

TEST_CASE("CUDA gradient clipping matches the CPU", "[.][cuda][cuda_optim]") {
  EVIT_REQUIRE_GPU();
  Params p = make_params(31);
  set_grads(p, 5, 3.0);
  // the norm: f64 sums in another order
  const double n_cpu = optim::grad_norm(p.cpu), n_gpu = optim::grad_norm(p.gpu);
  REQUIRE(n_gpu == Approx(n_cpu).epsilon(1e-12));
  // no clipping when the norm is below max_norm
  REQUIRE(optim::clip_grad_norm(p.gpu, 1e6) == Approx(n_cpu).epsilon(1e-12));
  REQUIRE(optim::clip_grad_norm(p.cpu, 1e6) == Approx(n_cpu).epsilon(1e-12));
  require_same(grads_of(p.gpu), grads_of(p.cpu), "unclipped gradient");
  // clipping: factor computed and applied on the device
  const double total_gpu = optim::clip_grad_norm(p.gpu, 2.5);
  const double total_cpu = optim::clip_grad_norm(p.cpu, 2.5);
  REQUIRE(total_gpu == Approx(total_cpu).epsilon(1e-12));
  require_same(grads_of(p.gpu), grads_of(p.cpu), "clipped gradient");
  REQUIRE(optim::grad_norm(p.gpu) == Approx(2.5).epsilon(1e-5));
  // the host path (error_if_nonfinite) gives the same
  set_grads(p, 6, 3.0);
  REQUIRE(optim::clip_grad_norm(p.gpu, 1.0, true) == Approx(optim::clip_grad_norm(p.cpu, 1.0, true)).epsilon(1e-12));
  require_same(grads_of(p.gpu), grads_of(p.cpu), "clipped gradient (host path)");
  // a non-finite gradient is reported when asked
  p.gpu[0].set_grad(full(p.gpu[0].sizes(), std::numeric_limits<double>::infinity(), {DType::f32, cuda0()}));
  REQUIRE_THROWS_WITH(optim::clip_grad_norm(p.gpu, 1.0, true), Catch::Contains("non-finite"));
  // by value, NaN kept
  set_grads(p, 7, 3.0);
  optim::clip_grad_value(p.gpu, 0.75);
  optim::clip_grad_value(p.cpu, 0.75);
  require_same(grads_of(p.gpu), grads_of(p.cpu), "value-clipped gradient");
  Tensor nan_grad = from_vector<float>({std::nanf(""), 5.0f, -5.0f, 0.25f}, {4});
  Tensor w = zeros({4}, {DType::f32, cuda0()}).requires_grad_();
  w.set_grad(nan_grad.to(cuda0()));
  optim::clip_grad_value(std::vector<Tensor>{w}, 1.0);
  std::vector<float> got = w.grad().to_vector<float>();
  REQUIRE(std::isnan(got[0]));
  REQUIRE(got[1] == 1.0f);
  REQUIRE(got[2] == -1.0f);
  REQUIRE(got[3] == 0.25f);
}

TEST_CASE("CUDA GradScaler matches the CPU: unscale, skip on inf, backoff and growth", "[.][cuda][cuda_optim]") {
  EVIT_REQUIRE_GPU();
  Params p = make_params(41);
  optim::AdamW cpu_opt(groups_of(p.cpu, 1e-3, 0.01));
  optim::AdamW gpu_opt(groups_of(p.gpu, 1e-3, 0.01));
  optim::GradScaler cpu(1024.0, 2.0, 0.5, 2), gpu(1024.0, 2.0, 0.5, 2);
  for (int s = 0; s < 6; ++s) {
    INFO("step " << s + 1);
    set_grads(p, s + 20, cpu.get_scale());
    if (s == 2) {  // an inf in a CUDA gradient (and the same on the CPU)
      const double inf = std::numeric_limits<double>::infinity();
      copy_(slice(p.cpu[3].grad(), 0, 100, 101), full({1}, inf, DType::f64));
      copy_(slice(p.gpu[3].grad(), 0, 100, 101), full({1}, inf, {DType::f64, cuda0()}));
    }
    if (s == 4) {  // a NaN in an f32 gradient
      copy_(slice(p.cpu[0].grad(), 0, 3, 4), full({1}, std::nan(""), DType::f32));
      copy_(slice(p.gpu[0].grad(), 0, 3, 4), full({1}, std::nan(""), {DType::f32, cuda0()}));
    }
    const bool finite_cpu = cpu.unscale_(cpu_opt);
    const bool finite_gpu = gpu.unscale_(gpu_opt);
    REQUIRE(finite_gpu == finite_cpu);
    REQUIRE(finite_gpu == (s != 2 && s != 4));
    if (finite_cpu) require_same(grads_of(p.gpu), grads_of(p.cpu), "unscaled gradient");
    REQUIRE(gpu.step(gpu_opt) == cpu.step(cpu_opt));
    require_same(p.gpu, p.cpu, "parameter");
    cpu.update();
    gpu.update();
    REQUIRE(gpu.get_scale() == cpu.get_scale());
    REQUIRE(gpu.growth_tracker() == cpu.growth_tracker());
  }
  // 1024 -> 2048 (two good) -> 1024 (inf) -> 1024 (one good) -> 512 (NaN) -> 512 (one good)
  REQUIRE(gpu.get_scale() == 512.0);
}
