// SGD, gradient clipping, the warmup + cosine schedule and EMA against PyTorch / the recipe's
// formulas (tools/golden/gen_optim_sgd.py -> tests/golden/optim_sgd.safetensors).
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "autograd/grad_mode.h"
#include "core/copy.h"
#include "core/parallel.h"
#include "nn/container.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/norm.h"
#include "ops/ops.h"
#include "optim/clip.h"
#include "optim/ema.h"
#include "optim/schedule.h"
#include "optim/sgd.h"
#include "tests/support/test_util.h"

using namespace evit;

namespace {
Tensor gt(const std::string& key) { return test::golden_tensor("optim_sgd", key); }
}  // namespace

TEST_CASE("SGD matches torch.optim.SGD over five steps", "[optim]") {
  struct Case {
    std::string name;
    double lr, weight_decay;
    optim::SGDOptions o;
  };
  const std::vector<Case> cases = {
      {"plain", 0.1, 0.0, {}},
      {"wd", 0.05, 0.01, {}},
      {"momentum", 0.1, 1e-3, {0.9, 0.1, false, false}},
      {"nesterov", 0.02, 5e-4, {0.8, 0.0, true, false}},
      {"maximize", 0.03, 0.0, {0.5, 0.0, false, true}},
  };
  for (const char* suffix : {"", "_f32"}) {
    const bool f32 = std::string(suffix) == "_f32";
    // f64: only rounding-order differences; f32: a few ulps over five steps.
    const double rtol = f32 ? 1e-5 : 1e-13, atol = f32 ? 1e-6 : 1e-15;
    for (auto& c : cases) {
      const std::string k = "sgd_" + c.name + suffix + ".";
      INFO("case " << k);
      Tensor w = gt(k + "w0").clone().detach().requires_grad_();
      Tensor b = gt(k + "b0").clone().detach().requires_grad_();
      optim::SGD opt({{{{"w", w}}, c.lr, c.weight_decay}, {{{"b", b}}, c.lr * 0.5, 0.0}}, c.o);
      for (int s = 0; s < 5; ++s) {
        w.set_grad(gt(k + "gw" + std::to_string(s)).clone());
        b.set_grad(s == 0 ? Tensor() : gt(k + "gb" + std::to_string(s)).clone());
        opt.step();
        INFO("step " << s + 1);
        EVIT_REQUIRE_CLOSE(w, gt(k + "w" + std::to_string(s + 1)), rtol, atol);
        EVIT_REQUIRE_CLOSE(b, gt(k + "b" + std::to_string(s + 1)), rtol, atol);
      }
      if (c.o.momentum != 0.0) {
        EVIT_REQUIRE_CLOSE(opt.state_dict().at("w.momentum_buffer"), gt(k + "buf_w"), rtol, atol);
        EVIT_REQUIRE_CLOSE(opt.state_dict().at("b.momentum_buffer"), gt(k + "buf_b"), rtol, atol);
      } else {
        REQUIRE(opt.state_dict().empty());
      }
    }
  }
}

TEST_CASE("SGD state round trip, lazy buffers and bad input", "[optim]") {
  auto lin = std::make_shared<nn::Linear>(3, 2);
  optim::SGD a(optim::param_groups_by_name(*lin, 0.1, 1e-4), {0.9, 0.0, true, false});
  REQUIRE(a.state_dict().empty());  // no buffer before the first step, as in torch
  sum(lin->forward(randn({4, 3}))).backward();
  a.step();
  TensorMap saved = a.state_dict();
  REQUIRE(saved.size() == 2);
  optim::SGD b(optim::param_groups_by_name(*lin, 0.1, 1e-4), {0.9, 0.0, true, false});
  b.load_state_dict(saved);
  for (auto& [k, t] : saved) {
    INFO(k);
    REQUIRE(test::bitwise_equal(b.state_dict().at(k), t));
  }
  // Both optimizers take the same next step from the same state.
  Tensor w0 = lin->weight.detach().clone();
  a.step();
  Tensor wa = lin->weight.detach().clone();
  {
    NoGradGuard ng;
    copy_elements(lin->weight, w0);
  }
  b.step();
  REQUIRE(test::bitwise_equal(lin->weight.detach(), wa));

  TensorMap bad = saved;
  bad["nothing.momentum_buffer"] = zeros({1});
  REQUIRE_THROWS_WITH(b.load_state_dict(bad), Catch::Contains("nothing.momentum_buffer"));
  TensorMap bad_shape = saved;
  bad_shape["weight.momentum_buffer"] = zeros({5});
  REQUIRE_THROWS_WITH(b.load_state_dict(bad_shape), Catch::Contains("weight.momentum_buffer") && Catch::Contains("[5]"));
  REQUIRE_THROWS_WITH(optim::SGD(optim::param_groups_by_name(*lin, 0.1, 0.0), {0.0, 0.0, true, false}),
                      Catch::Contains("Nesterov"));
  REQUIRE_THROWS_WITH(optim::SGD(optim::param_groups_by_name(*lin, -1.0, 0.0)), Catch::Contains("learning rate"));
}

TEST_CASE("clip_grad_norm and clip_grad_value match torch.nn.utils", "[optim]") {
  for (const char* c : {"clip_norm_small", "clip_norm_large"}) {
    INFO(c);
    const std::string k = std::string(c) + ".";
    std::vector<Tensor> ps;
    for (int i = 0; i < 3; ++i) {
      Tensor g = gt(k + "g" + std::to_string(i));
      Tensor p = zeros_like(g).requires_grad_();
      p.set_grad(g.clone());
      ps.push_back(p);
    }
    // One parameter without a gradient is skipped, as in torch.
    ps.push_back(zeros({2}).requires_grad_());
    const double total = optim::clip_grad_norm(ps, std::string(c) == "clip_norm_small" ? 0.5 : 1e3);
    REQUIRE(total == Approx(gt(k + "total").item<double>()).epsilon(1e-14));
    for (int i = 0; i < 3; ++i) EVIT_REQUIRE_CLOSE(ps[i].grad(), gt(k + "out" + std::to_string(i)), 1e-14, 1e-16);
  }
  std::vector<Tensor> ps;
  for (int i = 0; i < 2; ++i) {
    Tensor g = gt("clip_value.g" + std::to_string(i));
    Tensor p = zeros_like(g).requires_grad_();
    p.set_grad(g.clone());
    ps.push_back(p);
  }
  optim::clip_grad_value(ps, 2.0);
  for (int i = 0; i < 2; ++i) REQUIRE(test::bitwise_equal(ps[i].grad(), gt("clip_value.out" + std::to_string(i))));
}

TEST_CASE("clip_grad_norm is thread-count independent, handles views and non-finite norms", "[optim]") {
  // A gradient large enough to span several parallel chunks.
  Tensor g = randn({300000}, DType::f32);
  Tensor p = zeros_like(g).requires_grad_();
  const int before = get_num_threads();
  std::vector<double> norms;
  for (int threads : {1, 3}) {
    set_num_threads(threads);
    p.set_grad(g.clone());
    norms.push_back(optim::grad_norm({p}));
  }
  set_num_threads(before);
  REQUIRE(norms[0] == norms[1]);  // bitwise
  double ref = 0;
  for (float v : g.to_vector<float>()) ref += double(v) * double(v);
  REQUIRE(norms[0] == Approx(std::sqrt(ref)).epsilon(1e-12));

  // Non-finite: error when asked, else propagated like torch.
  Tensor q = zeros({3}, DType::f64).requires_grad_();
  q.set_grad(from_vector<double>({1.0, NAN, 2.0}, {3}));
  REQUIRE_THROWS_WITH(optim::clip_grad_norm({q}, 1.0, true), Catch::Contains("non-finite"));
  REQUIRE(std::isnan(optim::clip_grad_norm({q}, 1.0)));
  REQUIRE_THROWS_WITH(optim::clip_grad_value({q}, -1.0), Catch::Contains("clip_value"));
}

TEST_CASE("WarmupCosine follows the recipe's formula and torch's schedulers", "[optim]") {
  for (const char* c : {"sched_spec", "sched_floor"}) {
    INFO(c);
    auto cfg = gt(std::string(c) + ".config").to_vector<double>();
    optim::WarmupCosine s({cfg[0], int64_t(cfg[1]), int64_t(cfg[2]), 0.0, cfg[3]});
    auto lr = gt(std::string(c) + ".lr").to_vector<double>();
    auto tlr = gt(std::string(c) + ".torch_lr").to_vector<double>();
    for (size_t i = 0; i < lr.size(); ++i) {
      INFO("step " << i);
      REQUIRE(s.current_step() == int64_t(i));
      REQUIRE(s.lr() == Approx(lr[i]).epsilon(1e-14).margin(1e-18));
      if (i < tlr.size()) REQUIRE(s.lr() == Approx(tlr[i]).epsilon(1e-9).margin(1e-15));
      s.step();
    }
  }
  optim::WarmupCosine w({0.5, 5, 10, 0.05, 0.0});
  auto lr = gt("sched_warmup_lr.lr").to_vector<double>();
  for (size_t i = 0; i < lr.size(); ++i) REQUIRE(w.lr_at(int64_t(i)) == Approx(lr[i]).epsilon(1e-14).margin(1e-18));
}

TEST_CASE("WarmupCosine state save/restore and checks", "[optim]") {
  optim::WarmupCosine a({1e-3, 4, 10});
  for (int i = 0; i < 7; ++i) a.step();
  optim::WarmupCosine b({1e-3, 4, 10});
  b.load_state_dict(a.state_dict());
  REQUIRE(b.current_step() == 7);
  REQUIRE(b.lr() == a.lr());
  optim::WarmupCosine other({1e-3, 4, 20});
  REQUIRE_THROWS_WITH(other.load_state_dict(a.state_dict()), Catch::Contains("decay_steps"));
  other.load_state_dict(a.state_dict(), /*check_options=*/false);
  REQUIRE(other.current_step() == 7);
  REQUIRE_THROWS_WITH(optim::WarmupCosine({1e-3, 4, 0}), Catch::Contains("decay_steps"));
  REQUIRE_THROWS_WITH(b.load_state_dict({}), Catch::Contains("'step'"));
}

TEST_CASE("EMA over parameters and BN running stats matches the reference rule", "[optim]") {
  auto model = std::make_shared<nn::Sequential>();
  model->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions{2, 3, 3}));
  model->push_back(std::make_shared<nn::BatchNorm2d>(3));
  const TensorMap& all = test::golden("optim_sgd");
  auto state_with_prefix = [&](const std::string& prefix) {
    TensorMap out;
    for (auto& [k, t] : all)
      if (k.rfind(prefix, 0) == 0) out[k.substr(prefix.size())] = t;
    return out;
  };
  model->load_state_dict(state_with_prefix("ema.init."));
  optim::EMA ema(*model);
  REQUIRE(ema.shadow().size() == 6);  // 7 entries minus num_batches_tracked
  REQUIRE_FALSE(ema.shadow().count("1.num_batches_tracked"));
  auto steps = gt("ema.steps").to_vector<int64_t>();
  for (size_t i = 0; i < steps.size(); ++i) {
    INFO("update " << i << " at step " << steps[i]);
    model->load_state_dict(state_with_prefix("ema.model" + std::to_string(i) + "."));
    ema.update(*model, steps[i]);
    TensorMap expect = state_with_prefix("ema.shadow" + std::to_string(i) + ".");
    REQUIRE(expect.size() == ema.shadow().size());
    for (auto& [k, t] : expect) {
      INFO(k);
      EVIT_REQUIRE_CLOSE(ema.shadow().at(k), t, 1e-6, 1e-7);
    }
  }
  REQUIRE(ema.decay_at(0) == 0.0);
  REQUIRE(ema.decay_at(2000) == Approx(0.9998 * (1 - std::exp(-1.0))));

  // Save / load by name, and copy into a model.
  auto path = (std::filesystem::temp_directory_path() / "evit_test_ema.safetensors").string();
  ema.save(path);
  optim::EMA other(*model);
  other.load(path);
  std::remove(path.c_str());
  for (auto& [k, t] : ema.shadow()) REQUIRE(test::bitwise_equal(other.shadow().at(k), t));
  Tensor nbt = model->state_dict().at("1.num_batches_tracked").clone();
  other.copy_to(*model);
  for (auto& [k, t] : ema.shadow()) REQUIRE(test::bitwise_equal(model->state_dict().at(k), t));
  REQUIRE(test::bitwise_equal(model->state_dict().at("1.num_batches_tracked"), nbt));

  TensorMap bad = ema.state_dict();
  bad["1.running_mean"] = zeros({4});
  REQUIRE_THROWS_WITH(other.load_state_dict(bad), Catch::Contains("1.running_mean") && Catch::Contains("[4]"));
  TensorMap missing = ema.state_dict();
  missing.erase("0.bias");
  REQUIRE_THROWS_WITH(other.load_state_dict(missing), Catch::Contains("missing entry '0.bias'"));
}
