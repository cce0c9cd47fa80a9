// nn::Module: registries, key names, state_dict round trips and strict loading reports.
#include <filesystem>

#include "nn/module.h"
#include "ops/ops.h"
#include "tests/support/test_util.h"

using namespace evit;

namespace {
struct Leafy : nn::Module {
  Tensor w, rm;
  Leafy() : nn::Module("Leafy") {
    w = register_parameter("weight", ones({2, 3}));
    rm = register_buffer("running_mean", zeros({2}));
    register_buffer("scratch", zeros({4}), /*persistent=*/false);
  }
  Tensor forward(const Tensor& x) override { return mul(x, w); }
};
struct Tree : nn::Module {
  Tree() : nn::Module("Tree") {
    register_module("conv", std::make_shared<Leafy>());
    register_module("act", std::make_shared<nn::Module>("Identity"));
    register_module("norm", std::make_shared<Leafy>());
  }
};
}  // namespace

TEST_CASE("state_dict keys follow registration order and dotted paths", "[nn]") {
  auto t = std::make_shared<Tree>();
  auto sd = t->state_dict();
  std::vector<std::string> keys;
  for (auto& [k, v] : sd) keys.push_back(k);
  REQUIRE(keys == std::vector<std::string>{"conv.running_mean", "conv.weight", "norm.running_mean",
                                           "norm.weight"});
  auto params = t->named_parameters();
  REQUIRE(params.size() == 2);
  REQUIRE(params[0].first == "conv.weight");
  REQUIRE(t->num_parameters() == 12);
  REQUIRE(t->named_buffers().size() == 4);  // includes non-persistent ones
  auto mods = t->named_modules();
  REQUIRE(mods.size() == 4);
  REQUIRE(mods[2].first == "act");
  REQUIRE(params[0].second.requires_grad());
}

TEST_CASE("load_state_dict copies in place and reports every problem at once", "[nn]") {
  auto a = std::make_shared<Tree>();
  auto b = std::make_shared<Tree>();
  TensorMap sd = a->state_dict();
  sd["conv.weight"] = full({2, 3}, 5.0);
  Tensor alias = std::static_pointer_cast<Leafy>(b->child("conv"))->w;
  REQUIRE(b->load_state_dict(sd).empty());
  REQUIRE(alias.to_vector<float>() == std::vector<float>(6, 5.f));  // aliases see new values

  TensorMap bad = a->state_dict();
  bad.erase("norm.weight");
  bad["conv.weight"] = zeros({3, 2});
  bad["extra.bias"] = zeros({1});
  try {
    b->load_state_dict(bad);
    FAIL("expected an error");
  } catch (const Error& e) {
    std::string msg = e.what();
    REQUIRE(msg.find("3 problem(s)") != std::string::npos);
    REQUIRE(msg.find("missing key: norm.weight") != std::string::npos);
    REQUIRE(msg.find("unexpected key: extra.bias") != std::string::npos);
    REQUIRE(msg.find("conv.weight: expected [2,3], got [3,2]") != std::string::npos);
  }
  // Strict failure changed nothing.
  REQUIRE(alias.to_vector<float>() == std::vector<float>(6, 5.f));
  // Non-strict loads what matches and returns the problems.
  auto problems = b->load_state_dict(bad, false);
  REQUIRE(problems.size() == 3);
}

TEST_CASE("a 'module.' prefix is stripped and weights round trip through a file", "[nn]") {
  auto a = std::make_shared<Tree>();
  TensorMap prefixed;
  for (auto& [k, v] : a->state_dict()) prefixed["module." + k] = full(v.sizes(), 2.0, {v.dtype()});
  auto b = std::make_shared<Tree>();
  REQUIRE(b->load_state_dict(prefixed).empty());
  std::string path = (std::filesystem::temp_directory_path() / "evit_module.safetensors").string();
  b->save(path);
  auto c = std::make_shared<Tree>();
  c->load(path);
  REQUIRE(test::bitwise_equal(c->state_dict().at("norm.weight"), full({2, 3}, 2.0)));
  std::filesystem::remove(path);
  REQUIRE_THROWS_WITH(c->load("missing.safetensors"), Catch::Contains("missing.safetensors"));
}

TEST_CASE("train/eval propagate and duplicate names are refused", "[nn]") {
  auto t = std::make_shared<Tree>();
  t->eval();
  REQUIRE_FALSE(t->child("conv")->is_training());
  t->train();
  REQUIRE(t->child("norm")->is_training());
  REQUIRE_THROWS_WITH(t->register_module("conv", std::make_shared<Leafy>()),
                      Catch::Contains("already registered"));
  Tensor x = ones({2, 3});
  sum((*t->child("conv"))(x)).backward();
  REQUIRE(t->named_parameters()[0].second.grad().defined());
  t->zero_grad();
  REQUIRE_FALSE(t->named_parameters()[0].second.grad().defined());
}
