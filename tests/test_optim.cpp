// AdamW against torch.optim.AdamW, parameter groups by name, state round trip.
#include "nn/linear.h"
#include "ops/ops.h"
#include "optim/adamw.h"
#include "tests/support/test_util.h"

using namespace evit;

TEST_CASE("AdamW matches torch.optim.AdamW over five steps", "[optim]") {
  auto gt = [](const std::string& k) { return test::golden_tensor("optim", "adamw." + k); };
  Tensor w = gt("w0").clone().detach().requires_grad_();
  Tensor b = gt("b0").clone().detach().requires_grad_();
  optim::AdamW opt({{{{"w", w}}, 0.01, 0.05}, {{{"b", b}}, 0.01, 0.0}}, {0.9, 0.98, 1e-8});
  for (int s = 0; s < 5; ++s) {
    w.set_grad(gt("gw" + std::to_string(s)).clone());
    b.set_grad(gt("gb" + std::to_string(s)).clone());
    opt.step();
    INFO("step " << s + 1);
    EVIT_REQUIRE_CLOSE(w, gt("w" + std::to_string(s + 1)), 1e-12, 1e-14);
    EVIT_REQUIRE_CLOSE(b, gt("b" + std::to_string(s + 1)), 1e-12, 1e-14);
  }
  EVIT_REQUIRE_CLOSE(opt.state_dict().at("w.exp_avg_sq"), gt("exp_avg_sq_w"), 1e-12, 1e-16);
  REQUIRE(opt.state_dict().at("w.step").item<int64_t>() == 5);
}

TEST_CASE("AdamW groups by name and restores its state exactly", "[optim]") {
  auto lin = std::make_shared<nn::Linear>(3, 2);
  auto groups = optim::param_groups_by_name(*lin, 0.1, 0.05);
  REQUIRE(groups.size() == 2);
  REQUIRE(groups[0].params[0].first == "weight");
  REQUIRE(groups[0].weight_decay == 0.05);
  REQUIRE(groups[1].params[0].first == "bias");
  REQUIRE(groups[1].weight_decay == 0.0);
  optim::AdamW a(groups);
  Tensor x = randn({4, 3});
  sum(lin->forward(x)).backward();
  a.step();
  TensorMap saved = a.state_dict();
  optim::AdamW b(optim::param_groups_by_name(*lin, 0.1, 0.05));
  b.load_state_dict(saved);
  for (auto& [k, t] : saved) {
    INFO(k);
    REQUIRE(test::bitwise_equal(b.state_dict().at(k), t));
  }
  TensorMap bad = saved;
  bad["nothing.exp_avg"] = zeros({1});
  REQUIRE_THROWS_WITH(b.load_state_dict(bad), Catch::Contains("nothing.exp_avg"));
  a.zero_grad();
  REQUIRE_FALSE(lin->weight.grad().defined());
}
