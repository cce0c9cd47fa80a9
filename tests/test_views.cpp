// View ops and sum/mean: PyTorch goldens (values and gradients) and full f64 gradchecks,
// including non-contiguous inputs.
#include <functional>
#include <map>

#include "ops/ops.h"
#include "tests/support/test_util.h"

using namespace evit;

namespace {
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
const std::map<std::string, Fn>& cases() {
  static const std::map<std::string, Fn> c = {
      {"reshape", [](auto& in) { return reshape(in[0], {4, -1}); }},
      {"view", [](auto& in) { return view(in[0], {6, 4}); }},
      {"permute", [](auto& in) { return permute(in[0], {2, 0, 1}); }},
      {"transpose", [](auto& in) { return transpose(in[0], 0, 2); }},
      {"slice", [](auto& in) { return slice(slice(in[0], 1, 1, 3), 2, 0, 4, 2); }},
      {"select", [](auto& in) { return select(in[0], 1, -1); }},
      {"expand", [](auto& in) { return expand(in[0], {5, 3, 4}); }},
      {"squeeze", [](auto& in) { return squeeze(in[0], 1); }},
      {"unsqueeze", [](auto& in) { return unsqueeze(in[0], -1); }},
      {"flatten", [](auto& in) { return flatten(in[0], 1); }},
      {"sum_all", [](auto& in) { return sum(in[0]); }},
      {"sum_dims", [](auto& in) { return sum(in[0], {0, 2}, true); }},
      {"sum_neg", [](auto& in) { return sum(in[0], {-1}); }},
      {"mean_all", [](auto& in) { return mean(in[0]); }},
      {"mean_dims", [](auto& in) { return mean(in[0], {1}); }},
      {"clone_permuted", [](auto& in) { return permute(in[0], {1, 0, 2}).contiguous(); }},
      {"to_f32_and_back", [](auto& in) { return mul(in[0].to(DType::f32).to(DType::f64), 2.0); }},
  };
  return c;
}
}  // namespace

TEST_CASE("view ops, sum and mean match PyTorch", "[shape]") {
  for (auto& [name, fn] : cases()) {
    SECTION(name) {
      // f32 round trip loses precision by design: compare it at f32 resolution.
      double tol = name == "to_f32_and_back" ? 1e-6 : 1e-12;
      test::check_golden_case("views", name, fn, tol, tol);
    }
  }
}

TEST_CASE("view ops, sum and mean pass gradcheck on contiguous and strided inputs", "[shape]") {
  for (auto& [name, fn] : cases()) {
    if (name == "to_f32_and_back") continue;  // not differentiable at f64 resolution
    SECTION(name) {
      Tensor base = test::golden_tensor("views", name + ".x0");
      Tensor x = test::leaf(base);
      EVIT_REQUIRE_GRADCHECK(fn, std::vector<Tensor>{x});
      if (name == "view") continue;  // view of a strided tensor is refused by design
      // The same values as a non-contiguous leaf: a transposed copy transposed back.
      Shape s = base.sizes();
      std::vector<int64_t> rev(s.size());
      for (size_t i = 0; i < s.size(); ++i) rev[i] = static_cast<int64_t>(s.size() - 1 - i);
      Tensor strided = permute(permute(base.to(DType::f64), rev).contiguous(), rev).detach();
      strided.requires_grad_(true);
      int64_t nontrivial = 0;
      for (int64_t d : s) nontrivial += d > 1;
      if (nontrivial > 1) REQUIRE_FALSE(strided.is_contiguous());
      EVIT_REQUIRE_GRADCHECK(fn, std::vector<Tensor>{strided});
    }
  }
}
