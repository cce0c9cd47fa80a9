// EfficientViT-SAM against the reference: parameter, key and state counts of the reference and the
// SAM golden rows (deterministic weights over the full model's keys, sine input).
#include <cmath>

#include "autograd/grad_mode.h"
#include "ops/shape.h"
#include "tests/support/test_util.h"
#include "zoo/profile.h"
#include "zoo/sam.h"

using namespace evit;

namespace {

int64_t state_numel(const nn::Module& m) {
  int64_t n = 0;
  for (auto& [k, t] : m.state_dict()) n += t.numel();
  return n;
}

// SAM-L0 with the deterministic fill and its image embedding of the 512×512 sine input, computed once per
// process (the encoder forward is ~35 GMACs) and shared by the rows below.
struct L0Fixture {
  std::shared_ptr<zoo::EfficientViTSam> model;
  Tensor embedding;
};

L0Fixture& l0_fixture() {
  static L0Fixture f = [] {
    NoGradGuard no_grad;
    L0Fixture r;
    r.model = std::static_pointer_cast<zoo::EfficientViTSam>(zoo::create_model("efficientvit-sam-l0"));
    test::fill_deterministic(*r.model);
    r.model->eval();
    r.embedding = r.model->image_embedding(test::sine_input({1, 3, 512, 512}));
    return r;
  }();
  return f;
}

}  // namespace

TEST_CASE("EfficientViT-SAM models have the reference parameter, key and state counts", "[sam]") {
  struct Row {
    const char* name;
    int64_t total, encoder, backbone, neck, keys, state;
  };
  const Row rows[] = {
      {"efficientvit-sam-l0", 34792784, 30728224, 27805472, 2922240, 409, 34816052},
      {"efficientvit-sam-l1", 47650128, 43585568, 38037280, 5547776, 515, 47682626},
      {"efficientvit-sam-l2", 61328592, 57264032, 49090208, 8173312, 645, 61372244},
      {"efficientvit-sam-xl0", 116957904, 112893344, 96622752, 16270080, 455, 117011772},
      {"efficientvit-sam-xl1", 203346128, 199281568, 167266976, 32014080, 701, 203440990},
  };
  for (const Row& r : rows) {
    INFO(r.name);
    auto m = std::dynamic_pointer_cast<zoo::EfficientViTSam>(zoo::create_model(r.name));
    REQUIRE(m != nullptr);
    REQUIRE(zoo::model_info(r.name).task == "sam");
    CHECK(m->num_parameters() == r.total);
    CHECK(m->image_encoder->num_parameters() == r.encoder);
    CHECK(m->image_encoder->backbone->num_parameters() == r.backbone);
    CHECK(m->image_encoder->neck->num_parameters() == r.neck);
    CHECK(m->image_encoder->norm->num_parameters() == 512);
    CHECK(m->prompt_encoder->num_parameters() == 6220);
    CHECK(m->mask_decoder->num_parameters() == 4058340);
    CHECK(static_cast<int64_t>(m->state_dict().size()) == r.keys);
    CHECK(state_numel(*m) == r.state);
  }
  REQUIRE_THROWS_WITH(zoo::create_model("efficientvit-sam-l0", 10), Catch::Contains("no classes"));
}

TEST_CASE("EfficientViT-SAM state-dict keys follow the reference layout", "[sam]") {
  auto sd = zoo::create_model("efficientvit-sam-l0")->state_dict();
  const std::pair<const char*, Shape> expected[] = {
      {"image_encoder.neck.input_ops.0.op_list.0.conv.weight", {256, 512, 1, 1}},
      {"image_encoder.neck.input_ops.2.op_list.0.norm.running_var", {256}},
      {"image_encoder.neck.middle.op_list.3.main.spatial_conv.conv.weight", {256, 256, 3, 3}},
      {"image_encoder.neck.output_ops.0.op_list.0.conv.bias", {256}},
      {"image_encoder.norm.weight", {256}},
      {"prompt_encoder.pe_layer.positional_encoding_gaussian_matrix", {2, 128}},
      {"prompt_encoder.point_embeddings.3.weight", {1, 256}},
      {"prompt_encoder.not_a_point_embed.weight", {1, 256}},
      {"prompt_encoder.no_mask_embed.weight", {1, 256}},
      {"prompt_encoder.mask_downscaling.0.weight", {4, 1, 2, 2}},
      {"prompt_encoder.mask_downscaling.4.bias", {16}},
      {"prompt_encoder.mask_downscaling.6.weight", {256, 16, 1, 1}},
      {"mask_decoder.transformer.layers.0.self_attn.q_proj.weight", {256, 256}},
      {"mask_decoder.transformer.layers.1.cross_attn_token_to_image.k_proj.weight", {128, 256}},
      {"mask_decoder.transformer.layers.1.cross_attn_image_to_token.out_proj.weight", {256, 128}},
      {"mask_decoder.transformer.layers.0.mlp.lin1.weight", {2048, 256}},
      {"mask_decoder.transformer.layers.1.norm4.bias", {256}},
      {"mask_decoder.transformer.final_attn_token_to_image.v_proj.bias", {128}},
      {"mask_decoder.transformer.norm_final_attn.weight", {256}},
      {"mask_decoder.iou_token.weight", {1, 256}},
      {"mask_decoder.mask_tokens.weight", {4, 256}},
      {"mask_decoder.output_upscaling.0.weight", {256, 64, 2, 2}},
      {"mask_decoder.output_upscaling.1.weight", {64}},
      {"mask_decoder.output_upscaling.3.weight", {64, 32, 2, 2}},
      {"mask_decoder.output_hypernetworks_mlps.3.layers.2.weight", {32, 256}},
      {"mask_decoder.iou_prediction_head.layers.2.bias", {4}},
  };
  for (auto& [key, shape] : expected) {
    INFO(key);
    REQUIRE(sd.count(key) == 1);
    REQUIRE(sd.at(key).sizes() == shape);
  }
}

TEST_CASE("SAM-L0 image encoder reproduces the reference golden values", "[sam]") {
  Tensor e = l0_fixture().embedding;
  REQUIRE(e.sizes() == Shape{1, 256, 64, 64});
  test::check_golden(e, {-2746.93, 946380, {-0.992513, -0.992064, -0.991602, -0.991387}});
}

TEST_CASE("SAM dense positional encoding reproduces the reference golden values", "[sam]") {
  auto m = zoo::make_efficientvit_sam("l0");  // only the prompt encoder's keys matter here
  test::fill_deterministic(*m);
  Tensor pe = m->prompt_encoder->dense_pe();
  REQUIRE(pe.sizes() == Shape{1, 256, 64, 64});
  test::check_golden(pe, {498044, 619537, {-0.0356539, -0.0516327, -0.0675982, -0.0835465}});
}

TEST_CASE("SAM prompt encoder box tokens reproduce the reference golden values", "[sam]") {
  auto m = zoo::make_efficientvit_sam("l0");
  test::fill_deterministic(*m);
  NoGradGuard no_grad;
  auto [sparse, dense] = m->prompt_encoder->forward({}, std::array<float, 4>{100, 150, 700, 600});
  REQUIRE(sparse.sizes() == Shape{1, 2, 256});
  REQUIRE(dense.sizes() == Shape{1, 256, 64, 64});
  test::check_golden(sparse, {255.485, 274.160, {0.0511149, 0.107758, 0.149760, 0.171477}});
}

TEST_CASE("SAM-L0 mask decoder with a box (multimask) reproduces the reference golden values", "[sam]") {
  auto& f = l0_fixture();
  NoGradGuard no_grad;
  auto [masks, iou] = f.model->predict(f.embedding, {}, std::array<float, 4>{100, 150, 700, 600}, true);
  REQUIRE(masks.sizes() == Shape{1, 3, 256, 256});
  REQUIRE(iou.sizes() == Shape{1, 3});
  test::check_golden(masks, {-4140.79, 4140.79, {-0.0419309, -0.0381698, -0.0237896, -0.0209013}});
  test::check_golden(iou, {-0.0156533, 0.123834, {0.0540906, -0.00537919, -0.0643647}});
}

TEST_CASE("SAM-L0 mask decoder with points (single mask) reproduces the reference golden values", "[sam]") {
  auto& f = l0_fixture();
  NoGradGuard no_grad;
  auto [masks, iou] = f.model->predict(f.embedding, {{400, 300, 1}, {500, 450, 0}}, std::nullopt, false);
  REQUIRE(masks.sizes() == Shape{1, 1, 256, 256});
  REQUIRE(iou.sizes() == Shape{1, 1});
  test::check_golden(masks, {-1495.06, 1495.06, {-0.0413204, -0.0375952, -0.0234086, -0.0205992}});
  test::check_golden(iou, {0.104707, 0.104707, {0.104707}});
}

TEST_CASE("SAM prompt encoder: padding point, mask input and bad prompts", "[sam]") {
  auto m = zoo::make_efficientvit_sam("l0");
  m->eval();
  NoGradGuard no_grad;
  auto& pe = *m->prompt_encoder;
  // Points without a box get one padding token, which is exactly not_a_point_embed.
  auto [s1, d1] = pe.forward({{10, 20, 1}}, std::nullopt);
  REQUIRE(s1.sizes() == Shape{1, 2, 256});
  Tensor pad_tok = m->prompt_encoder->state_dict().at("not_a_point_embed.weight");
  REQUIRE(test::bitwise_equal(slice(s1, 1, 1, 2).contiguous(), reshape(pad_tok, {1, 1, 256})));
  // With a box there is no padding point: 1 point + 2 corners.
  auto [s2, d2] = pe.forward({{10, 20, 0}}, std::array<float, 4>{0, 0, 100, 100});
  REQUIRE(s2.sizes() == Shape{1, 3, 256});
  // A 256×256 mask prompt is downscaled to the embedding grid.
  auto [s3, d3] = pe.forward({}, std::array<float, 4>{0, 0, 100, 100}, zeros({1, 1, 256, 256}));
  REQUIRE(d3.sizes() == Shape{1, 256, 64, 64});
  REQUIRE_THROWS_WITH(pe.forward({}, std::nullopt, zeros({1, 1, 128, 128})), Catch::Contains("mask input"));
  REQUIRE_THROWS_WITH(pe.forward({{1, 2, 3}}, std::nullopt), Catch::Contains("label"));
  REQUIRE_THROWS_WITH(m->predict(zeros({1, 256, 64, 64}), {}, std::nullopt, true), Catch::Contains("point or a box"));
}

TEST_CASE("SAM-L0 image encoder MACs agree with the reference count within 0.5%", "[sam]") {
  auto m = zoo::create_model("efficientvit-sam-l0");
  zoo::ModelProfile p = zoo::profile_model(*m, {1, 3, 512, 512});
  INFO(p.macs << " MACs, expected 34.8G");
  REQUIRE(std::abs(static_cast<double>(p.macs) / 1e9 - 34.8) <= 0.005 * 34.8);
}
