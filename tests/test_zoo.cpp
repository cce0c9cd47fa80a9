// The EfficientViT model zoo against the reference: parameter counts and state-dict layouts
// and the golden forward values (deterministic weights and input).
#include <cmath>
#include <map>

#include <nlohmann/json.hpp>

#include "autograd/grad_mode.h"
#include "core/cpu_cache.h"
#include "ops/ops.h"
#include "tests/support/test_util.h"
#include "zoo/lite_mla.h"
#include "zoo/local_blocks.h"
#include "zoo/models.h"
#include "zoo/profile.h"

using namespace evit;

using test::check_golden;
using test::fill_deterministic;
using test::Golden;
using test::sine_input;

namespace {

int64_t state_numel(const nn::Module& m) {
  int64_t n = 0;
  for (auto& [k, t] : m.state_dict()) n += t.numel();
  return n;
}

}  // namespace

TEST_CASE("classification models have the reference parameter counts and key counts", "[zoo]") {
  struct Row {
    const char* name;
    int64_t params, backbone, keys, state;
  };
  const Row rows[] = {
      {"efficientvit-b0", 3410008, 682608, 197, 3415394},
      {"efficientvit-b1", 9102024, 4643936, 272, 9115467},
      {"efficientvit-b2", 24330712, 14977008, 365, 24357303},
      {"efficientvit-b3", 48646056, 38997440, 514, 48693930},
      {"efficientvit-l1", 52654088, 38037280, 271, 52682728},
      {"efficientvit-l2", 63707016, 49090208, 353, 63742706},
  };
  for (const Row& r : rows) {
    INFO(r.name);
    auto m = std::dynamic_pointer_cast<zoo::EfficientViTCls>(zoo::create_model(r.name));
    REQUIRE(m->num_parameters() == r.params);
    REQUIRE(m->backbone->num_parameters() == r.backbone);
    REQUIRE(static_cast<int64_t>(m->state_dict().size()) == r.keys);
    REQUIRE(state_numel(*m) == r.state);
  }
}

TEST_CASE("segmentation models have the reference parameter counts and key counts", "[zoo]") {
  struct Row {
    const char* name;
    int64_t params, head, keys, state;
  };
  const Row rows[] = {
      {"efficientvit-seg-b0-cityscapes", 706691, 24083, 230, 711059},
      {"efficientvit-seg-b1-cityscapes", 4803443, 159507, 341, 4818178},
      {"efficientvit-seg-b2-cityscapes", 15323779, 346771, 434, 15352302},
      {"efficientvit-seg-b3-cityscapes", 39603155, 605715, 583, 39655137},
      {"efficientvit-seg-l1-cityscapes", 40242227, 2204947, 316, 40269339},
      {"efficientvit-seg-l2-cityscapes", 52607923, 3517715, 422, 52644137},
      {"efficientvit-seg-b1-ade20k", 4791414, 147478, 335, 4805636},
      {"efficientvit-seg-b2-ade20k", 15293382, 316374, 428, 15321136},
      {"efficientvit-seg-b3-ade20k", 39546198, 548758, 577, 39597155},
      {"efficientvit-seg-l1-ade20k", 40409526, 2372246, 322, 40438687},
      {"efficientvit-seg-l2-ade20k", 51462454, 2372246, 404, 51498665},
  };
  for (const Row& r : rows) {
    INFO(r.name);
    auto m = std::dynamic_pointer_cast<zoo::EfficientViTSeg>(zoo::create_model(r.name));
    REQUIRE(m->num_parameters() == r.params);
    REQUIRE(m->head->num_parameters() == r.head);
    REQUIRE(static_cast<int64_t>(m->state_dict().size()) == r.keys);
    REQUIRE(state_numel(*m) == r.state);
  }
}

TEST_CASE("SAM backbones have the reference parameter counts", "[zoo]") {
  const std::pair<const char*, int64_t> rows[] = {
      {"l0", 27805472}, {"l1", 38037280}, {"l2", 49090208}, {"xl0", 96622752}, {"xl1", 167266976}};
  for (auto& [name, params] : rows) {
    INFO(name);
    REQUIRE(zoo::make_backbone(name, 1e-6)->num_parameters() == params);
  }
}

TEST_CASE("state-dict keys follow the reference layout", "[zoo]") {
  auto b1 = zoo::create_model("efficientvit-b1")->state_dict();
  const std::pair<const char*, Shape> expected[] = {
      {"backbone.input_stem.op_list.0.conv.weight", {16, 3, 3, 3}},
      {"backbone.input_stem.op_list.1.main.depth_conv.conv.weight", {16, 1, 3, 3}},
      {"backbone.input_stem.op_list.1.main.point_conv.norm.running_var", {16}},
      {"backbone.stages.0.op_list.0.main.inverted_conv.conv.weight", {64, 16, 1, 1}},
      {"backbone.stages.2.op_list.0.main.inverted_conv.conv.bias", {256}},
      {"backbone.stages.2.op_list.1.context_module.main.qkv.conv.weight", {384, 128, 1, 1}},
      {"backbone.stages.2.op_list.1.context_module.main.aggreg.0.0.weight", {384, 1, 5, 5}},
      {"backbone.stages.2.op_list.1.context_module.main.aggreg.0.1.weight", {384, 16, 1, 1}},
      {"backbone.stages.2.op_list.1.context_module.main.proj.conv.weight", {128, 256, 1, 1}},
      {"backbone.stages.2.op_list.1.context_module.main.proj.norm.num_batches_tracked", {}},
      {"backbone.stages.2.op_list.1.local_module.main.depth_conv.conv.bias", {512}},
      {"head.op_list.0.conv.weight", {1536, 256, 1, 1}},
      {"head.op_list.2.linear.weight", {1600, 1536}},
      {"head.op_list.2.norm.weight", {1600}},
      {"head.op_list.3.linear.weight", {1000, 1600}},
      {"head.op_list.3.linear.bias", {1000}},
  };
  for (auto& [k, s] : expected) {
    INFO(k);
    REQUIRE(b1.count(k) == 1);
    REQUIRE(b1.at(k).sizes() == s);
  }
  REQUIRE(b1.at("backbone.stages.2.op_list.1.context_module.main.proj.norm.num_batches_tracked").dtype() ==
          DType::i64);
  auto seg = zoo::create_model("efficientvit-seg-b1-cityscapes")->state_dict();
  for (const char* k : {"head.input_ops.0.op_list.0.conv.weight", "head.input_ops.1.op_list.0.norm.weight",
                        "head.input_ops.2.conv.weight", "head.middle.op_list.2.main.point_conv.norm.bias",
                        "head.output_ops.0.op_list.0.conv.weight", "head.output_ops.0.op_list.1.conv.bias"}) {
    INFO(k);
    REQUIRE(seg.count(k) == 1);
  }
  auto l2 = zoo::create_model("efficientvit-seg-l2-ade20k")->state_dict();
  for (const char* k : {"backbone.stages.0.op_list.0.conv.weight", "backbone.stages.0.op_list.1.main.conv1.conv.weight",
                        "backbone.stages.1.op_list.0.main.spatial_conv.conv.weight",
                        "backbone.stages.4.op_list.1.context_module.main.qkv.conv.weight",
                        "head.middle.op_list.0.main.spatial_conv.norm.running_mean",
                        "head.output_ops.0.op_list.1.conv.bias"}) {
    INFO(k);
    REQUIRE(l2.count(k) == 1);
  }
  auto l1 = zoo::create_model("efficientvit-l1")->state_dict();
  REQUIRE(l1.count("backbone.stages.3.op_list.0.main.inverted_conv.conv.bias") == 1);
  REQUIRE(l1.count("backbone.input_stem.op_list.0.conv.weight") == 0);
}

TEST_CASE("LiteMLA and EfficientViTBlock reproduce the reference golden values", "[zoo]") {
  NoGradGuard no_grad;
  SECTION("LiteMLA linear path") {
    auto m = std::make_shared<zoo::LiteMLA>(16, 16, 8, std::vector<int64_t>{5}, zoo::NormSpec{"bn2d", 1e-5});
    fill_deterministic(*m);
    m->eval();
    check_golden(m->forward(sine_input({2, 16, 6, 6})),
                 {48.5932, 588.073, {-0.0813109, -0.0812599, -0.0811851, 0.0287315}});
  }
  SECTION("LiteMLA quadratic path") {
    auto m = std::make_shared<zoo::LiteMLA>(16, 16, 8, std::vector<int64_t>{5}, zoo::NormSpec{"bn2d", 1e-5});
    fill_deterministic(*m);
    m->eval();
    check_golden(m->forward(sine_input({1, 16, 2, 2})),
                 {-3.65857, 27.6715, {0.573206, 0.573039, 0.571961, 0.572310}});
  }
  SECTION("EfficientViTBlock hswish") {
    auto m = std::make_shared<zoo::EfficientViTBlock>(32, 16, 4, std::vector<int64_t>{5},
                                                      zoo::NormSpec{"bn2d", 1e-5}, "hswish");
    fill_deterministic(*m);
    m->eval();
    check_golden(m->forward(sine_input({1, 32, 8, 8})),
                 {63.1107, 1289.83, {-0.0746105, -0.0629920, -0.0500051, -0.0370247}});
  }
  SECTION("EfficientViTBlock gelu") {
    auto m = std::make_shared<zoo::EfficientViTBlock>(64, 32, 6, std::vector<int64_t>{3},
                                                      zoo::NormSpec{"bn2d", 1e-7}, "gelu");
    fill_deterministic(*m);
    m->eval();
    check_golden(m->forward(sine_input({1, 64, 8, 8})),
                 {146.281, 2625.40, {0.0303588, 0.0443428, 0.0574425, 0.0705393}});
  }
}

TEST_CASE("full models reproduce the reference golden values", "[zoo]") {
  NoGradGuard no_grad;
  struct Row {
    const char* name;
    Shape input;
    Golden g;
  };
  const Row rows[] = {
      {"efficientvit-b0", {1, 3, 224, 224}, {-0.111149, 277.452, {-0.416516, 0.337954, -0.0171015, -0.286881}}},
      {"efficientvit-b0", {1, 3, 64, 64}, {-0.110772, 280.575, {-0.421320, 0.342810, -0.0191992, -0.288756}}},
      {"efficientvit-b1", {1, 3, 224, 224}, {-0.0117526, 321.557, {-0.486067, -0.0702608, 0.480608, 0.264109}}},
      {"efficientvit-l1", {1, 3, 224, 224}, {-1.19289, 745.905, {-1.13773, 1.15692, -0.957834, 0.652104}}},
      {"efficientvit-seg-b0-cityscapes", {1, 3, 256, 512},
       {-190.624, 5737.91, {0.0903442, 0.0903966, 0.0904208, 0.0904090}}},
      {"efficientvit-seg-b1-ade20k", {1, 3, 256, 256}, {1418.84, 149480, {-0.826351, -0.793103, -0.790166, -0.788282}}},
      {"efficientvit-seg-l1-cityscapes", {1, 3, 256, 512},
       {-21606.0, 65961.8, {-0.976225, -0.977623, -0.978987, -0.980839}}},
  };
  for (const Row& r : rows) {
    INFO(r.name << " " << shape_str(r.input));
    auto m = zoo::create_model(r.name);
    fill_deterministic(*m);
    m->eval();
    check_golden(m->forward(sine_input(r.input)), r.g);
  }
}

TEST_CASE("MACs agree with the reference counts within 0.5%", "[zoo]") {
  struct Row {
    const char* name;
    Shape input;
    double gmacs;
  };
  const Row rows[] = {
      {"efficientvit-b0", {1, 3, 224, 224}, 0.100},  {"efficientvit-b1", {1, 3, 224, 224}, 0.519},
      {"efficientvit-b1", {1, 3, 288, 288}, 0.856},  {"efficientvit-b2", {1, 3, 224, 224}, 1.585},
      {"efficientvit-l1", {1, 3, 224, 224}, 5.258},  {"efficientvit-l2", {1, 3, 224, 224}, 6.950},
      {"efficientvit-seg-b1-ade20k", {1, 3, 512, 512}, 3.09},
      {"efficientvit-b3", {1, 3, 224, 224}, 3.954},  {"efficientvit-l3", {1, 3, 224, 224}, 27.587},
      {"efficientvit-seg-b0-cityscapes", {1, 3, 1024, 2048}, 4.39},
  };
  for (const Row& r : rows) {
    auto m = zoo::create_model(r.name);
    zoo::ModelProfile p = zoo::profile_model(*m, r.input);
    INFO(r.name << " " << shape_str(r.input) << ": " << p.macs << " MACs, expected " << r.gmacs << "G");
    REQUIRE(std::abs(static_cast<double>(p.macs) / 1e9 - r.gmacs) <= 0.005 * r.gmacs);
    REQUIRE(p.params == m->num_parameters());
  }
}

TEST_CASE("state dicts equal the reference layout key for key, in order", "[zoo]") {
  std::string path = std::string(EVIT_GOLDEN_DIR) + "/zoo_keys.json";
  auto j = nlohmann::json::parse(read_file(path));
  for (auto& [name, entries] : j.at("models").items()) {
    INFO(name);
    auto state = zoo::create_model(name)->ordered_state();
    REQUIRE(state.size() == entries.size());
    for (size_t i = 0; i < state.size(); ++i) {
      const auto& e = entries[i];
      INFO("entry " << i << ": reference " << e[0].get<std::string>() << ", evit " << state[i].first);
      REQUIRE(state[i].first == e[0].get<std::string>());
      REQUIRE(state[i].second.sizes() == e[1].get<Shape>());
      REQUIRE(std::string(state[i].second.dtype() == DType::i64 ? "I64" : "F32") == e[2].get<std::string>());
    }
  }
}

TEST_CASE("seg-B0 and B1 pass a fast gradcheck end to end", "[zoo]") {
  // The whole model in f64 on a tiny input. Eval mode keeps BatchNorm a fixed affine map, so
  // the finite differences see the same function the backward pass differentiates.
  for (auto [name, input] : {std::pair<const char*, Shape>{"efficientvit-seg-b0-cityscapes", {1, 3, 32, 32}},
                             {"efficientvit-b1", {1, 3, 32, 32}}}) {
    INFO(name);
    auto m = zoo::create_model(name);
    m->to(DType::f64);
    m->eval();
    Tensor x = test::random_leaf(input, -1, 1, 5);
    GradcheckOptions o;
    o.fast = true;
    o.fast_repeats = 2;
    // Parameters are leaves too: listing them makes gradcheck perturb and check them as well.
    std::vector<Tensor> inputs{x};
    for (auto& p : m->parameters()) inputs.push_back(p);
    auto fn = [&](const std::vector<Tensor>& in) { return m->forward(in[0]); };
    auto r = gradcheck(fn, inputs, o);
    INFO(r.message);
    REQUIRE(r.ok);
    // Every parameter receives a gradient.
    m->zero_grad();
    sum(m->forward(x)).backward();
    for (auto& [k, p] : m->named_parameters()) {
      INFO(k);
      REQUIRE(p.grad().defined());
      REQUIRE(p.grad().dtype() == DType::f64);
    }
  }
}

TEST_CASE("train and eval modes differ exactly where BatchNorm says", "[zoo]") {
  NoGradGuard no_grad;
  auto m = zoo::create_model("efficientvit-b0");
  Tensor x = randn({2, 3, 64, 64});
  m->eval();
  Tensor e1 = m->forward(x), e2 = m->forward(x);
  REQUIRE(test::bitwise_equal(e1, e2));  // eval is deterministic and stateless
  auto bn_state = [&] { return m->state_dict().at("backbone.input_stem.op_list.0.norm.running_mean").clone(); };
  Tensor before = bn_state();
  m->eval();
  m->forward(x);
  REQUIRE(test::bitwise_equal(before, bn_state()));  // eval never touches running stats
  m->train();
  Tensor t1 = m->forward(x);
  REQUIRE_FALSE(test::bitwise_equal(before, bn_state()));  // training updates them
  REQUIRE_FALSE(test::bitwise_equal(t1, e1));                // and normalises with batch stats
  REQUIRE(m->state_dict().at("backbone.input_stem.op_list.0.norm.num_batches_tracked").item<int64_t>() == 1);
}

TEST_CASE("EfficientViT-SR upscales by its factor and learns a residual over bicubic", "[zoo]") {
  NoGradGuard no_grad;
  for (auto [name, scale] : {std::pair<const char*, int64_t>{"efficientvit-sr-x2", 2},
                             {"efficientvit-sr-x3", 3}, {"efficientvit-sr-x4-w0.75", 4}}) {
    INFO(name);
    auto m = zoo::create_model(name);
    m->eval();
    Tensor x = rand({1, 3, 12, 10});
    auto f = m->forward_with_features(x);
    REQUIRE(f.at("output").sizes() == Shape{1, 3, 12 * scale, 10 * scale});
    REQUIRE(f.at("stage0").size(1) == (std::string(name).find("w0.75") != std::string::npos ? 48 : 64));
    // With the upsampler zeroed the model is exactly bicubic interpolation (the global residual).
    TensorMap sd = m->state_dict();
    sd.at("upsampler.weight") = zeros(sd.at("upsampler.weight").sizes());
    sd.at("upsampler.bias") = zeros(sd.at("upsampler.bias").sizes());
    m->load_state_dict(sd);
    Tensor bicubic = interpolate(x, {12 * scale, 10 * scale}, {}, InterpolateMode::bicubic, false);
    REQUIRE(test::bitwise_equal(m->forward(x), bicubic));
  }
  auto full = zoo::create_model("efficientvit-sr-x2");
  auto slim = zoo::create_model("efficientvit-sr-x2-w0.75");
  REQUIRE(slim->num_parameters() < full->num_parameters() * 0.65);  // about 0.75² plus biases
  REQUIRE_THROWS_WITH(full->forward(rand({1, 1, 8, 8})), Catch::Contains("[N,3,H,W]"));
}

TEST_CASE("drop path follows the reference schedule over the backbone's residual blocks", "[zoo]") {
  auto m = zoo::create_model("efficientvit-b0");
  // B0: stages hold 1 + 1 (stage 1-2 MBConvs with shortcuts) and 2 + 2 EViT blocks x 2 residuals = 10.
  REQUIRE(zoo::set_drop_path(*m, 0.1, 0, 1.0) == 10);
  std::vector<double> probs;
  for (auto& [name, mod] : m->named_modules())
    if (auto* r = dynamic_cast<zoo::ResidualBlock*>(mod.get()); r && r->has_shortcut() && name.rfind("backbone.stages.", 0) == 0)
      probs.push_back(r->drop_path_prob);
  REQUIRE(probs.size() == 10);
  REQUIRE(std::abs(probs.front() - 0.01) < 1e-12);
  REQUIRE(std::abs(probs.back() - 0.1) < 1e-12);
  REQUIRE(zoo::set_drop_path(*m, 0.1, 3, 0.5) == 7);
  m->train();
  Tensor x = randn({4, 3, 32, 32});
  Tensor a = m->forward(x), b = m->forward(x);
  REQUIRE_FALSE(test::bitwise_equal(a, b));  // stochastic in training
  m->eval();
  REQUIRE(test::bitwise_equal(m->forward(x), m->forward(x)));
}

TEST_CASE("seg-B0 at 512x1024 gives the same output with its MBConvs and DSConvs fused as layer by layer", "[zoo]") {
  // Without grad mode the high-resolution MBConvs and the stem's DSConv run as one
  // inverted_bottleneck each (their middle tensors have 1M values and more); with grad mode on,
  // as separate convolutions.
  auto m = zoo::create_model("efficientvit-seg-b0-cityscapes");
  // Random BatchNorm statistics and affine terms, so every folded bias and scale matters.
  TensorMap sd = m->state_dict();
  for (auto& [key, t] : sd) {
    if (key.find(".norm.") == std::string::npos) continue;
    if (key.ends_with("running_var") || key.ends_with(".weight"))
      t = uniform(t.sizes(), 0.5, 1.5);
    else if (key.ends_with("running_mean") || key.ends_with(".bias"))
      t = uniform(t.sizes(), -0.5, 0.5);
  }
  m->load_state_dict(sd);
  m->eval();
  const Tensor x = randn({1, 3, 512, 1024});
  const Tensor layered = m->forward(x).detach();
  Tensor fused;
  {
    NoGradGuard no_grad;
    fused = m->forward(x);
  }
  EVIT_REQUIRE_CLOSE(fused, layered, 1e-4, 1e-4);
}

TEST_CASE("a residual block whose main block adds the shortcut itself gives main(x) + x bit for bit", "[zoo]") {
  // ResidualBlock hands its identity shortcut to every AddsShortcut block, which adds it in the
  // epilogue of its last convolution in inference (the MBConv on a large input: inside the
  // fused inverted_bottleneck). Each must give exactly add(main(x), x).
  struct Case {
    const char* name;
    std::shared_ptr<nn::Module> main;
    Shape x;
  };
  const zoo::NormSpec bn{"bn2d", 1e-5};
  const Case cases[] = {
      {"MBConv, fused (1M middle values)", zoo::make_local_block("mb", 16, 16, 1, 4, bn, "hswish", false), {1, 16, 128, 128}},
      {"MBConv fewer_norm, layer by layer", zoo::make_local_block("mb", 32, 32, 1, 4, bn, "hswish", true), {2, 32, 14, 14}},
      {"DSConv, fused", zoo::make_local_block("ds", 16, 16, 1, 1, bn, "hswish", false), {1, 16, 256, 256}},
      {"FusedMBConv", zoo::make_local_block("fmb", 16, 16, 1, 4, bn, "gelu", false), {1, 16, 20, 24}},
      {"ResBlock", zoo::make_local_block("res", 16, 16, 1, 1, bn, "relu", false), {1, 16, 20, 24}},
      {"LiteMLA", std::make_shared<zoo::LiteMLA>(32, 32, 8, std::vector<int64_t>{5}, bn), {1, 32, 12, 12}},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    REQUIRE(dynamic_cast<zoo::AddsShortcut*>(c.main.get()) != nullptr);
    auto block = std::make_shared<zoo::ResidualBlock>(c.main, true);
    // Nonzero BatchNorm statistics, so that the folded biases matter.
    TensorMap sd = block->state_dict();
    for (auto& [key, t] : sd)
      if (key.ends_with("running_mean") || key.ends_with(".bias")) t = uniform(t.sizes(), -0.5, 0.5);
    block->load_state_dict(sd);
    block->eval();
    NoGradGuard no_grad;
    const Tensor x = randn(c.x);
    REQUIRE(test::bitwise_equal(block->forward(x), add(c.main->forward(x), x)));
  }
}

TEST_CASE("a second inference call takes every large buffer from the CPU block cache", "[zoo][allocator]") {
  // Activations, padded planes and GEMM scratch of 256 KiB and more come from the block cache
  // (core/cpu_cache.h): once a first call has filled it, a second call of the same shape maps no
  // new memory (no page faults, no clearing of fresh pages).
  auto model = zoo::create_model("efficientvit-b0");
  model->eval();
  NoGradGuard no_grad;
  Tensor x = randn({1, 3, 224, 224});
  Tensor first = model->forward(x);
  const CpuCacheStats before = cpu_cache_stats();
  Tensor second = model->forward(x);
  const CpuCacheStats after = cpu_cache_stats();
  CHECK(after.misses == before.misses);
  CHECK(after.hits > before.hits);
  CHECK(first.to_vector<float>() == second.to_vector<float>());
}
