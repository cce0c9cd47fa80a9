#include "tests/support/cuda_compare.h"

#include "core/generator.h"

namespace evit::test {

Tensor random_f32(const Shape& shape, bool requires_grad, double lo, double hi, uint64_t seed) {
  Generator g(seed);
  Tensor t = uniform(shape, lo, hi, DType::f32, &g);
  if (requires_grad) t.requires_grad_();
  return t;
}

void require_cuda_matches_cpu(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                              const CudaCompareOptions& opt) {
  EVIT_REQUIRE_GPU();
  std::vector<Tensor> host, device;
  bool any_grad = false;
  for (const Tensor& x : inputs) {
    if (!x.defined()) {
      host.push_back(x);
      device.push_back(x);
      continue;
    }
    Tensor h = x.detach();
    Tensor d = x.detach().to(cuda0()).detach();
    if (x.requires_grad()) {
      h.requires_grad_();
      d.requires_grad_();
      any_grad = true;
    }
    host.push_back(h);
    device.push_back(d);
  }
  Tensor yh = fn(host);
  Tensor yd = fn(device);
  REQUIRE(yd.device() == cuda0());
  REQUIRE(yd.dtype() == yh.dtype());
  REQUIRE(yd.sizes() == yh.sizes());
  {
    INFO("outputs");
    EVIT_REQUIRE_CLOSE(yd.detach().to(kCPU), yh.detach(), opt.rtol, opt.atol);
  }
  if (!any_grad || !opt.check_grads || !is_floating(yh.dtype())) return;
  Generator g(opt.seed);
  Tensor w = uniform(yh.sizes(), -1.0, 1.0, yh.dtype(), &g);
  yh.backward(w);
  yd.backward(w.to(cuda0()));
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined() || !inputs[i].requires_grad()) continue;
    INFO("gradient of input " << i);
    REQUIRE(device[i].grad().defined() == host[i].grad().defined());
    if (!host[i].grad().defined()) continue;
    EVIT_REQUIRE_CLOSE(device[i].grad().to(kCPU), host[i].grad(), opt.grad_rtol, opt.grad_atol);
  }
}

void require_cuda_matches_cpu_f32_f64(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                                      double atol) {
  {
    INFO("f32");
    require_cuda_matches_cpu(fn, inputs, CudaCompareOptions{1e-4, atol, 1e-4, atol});
  }
  std::vector<Tensor> in64;
  for (const Tensor& t : inputs) {
    if (!t.defined()) {
      in64.push_back(t);
      continue;
    }
    Tensor r = t.detach().to(DType::f64);
    if (t.requires_grad()) r.requires_grad_();
    in64.push_back(r);
  }
  INFO("f64");
  require_cuda_matches_cpu(fn, in64, CudaCompareOptions{1e-10, 1e-10, 1e-10, 1e-10});
}

}  // namespace evit::test
