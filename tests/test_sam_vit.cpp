// The Segment Anything ViT image encoder (the distillation teacher) against segment-anything
// (tools/golden/gen_sam_vit.py, PyPI): windowed and global blocks with relative positions, a small
// and a reduced-depth ViT-B encoder, the resampled relative-position lookup, parameter counts and
// key names of ViT-H/L/B; gradient checks of the window and relative-position functions.
#include <catch2/catch.hpp>

#include "autograd/grad_mode.h"
#include "ops/ops.h"
#include "support/test_util.h"
#include "zoo/sam_vit.h"

using namespace evit;
using evit::test::require_gradcheck;

namespace {

const char* kFamily = "sam_vit";
Tensor g(const std::string& key) { return test::golden_tensor(kFamily, key); }

test::Golden rows_of(const std::string& key) {
  const auto v = g(key).to_vector<double>();
  return {v[0], v[1], std::vector<double>(v.begin() + 2, v.end())};
}

// Holds a module under "image_encoder", so the parity fill hashes the released checkpoint keys.
struct Holder : nn::Module {
  explicit Holder(std::shared_ptr<nn::Module> m) : nn::Module("Sam") { register_module("image_encoder", std::move(m)); }
};

}  // namespace

TEST_CASE("SAM ViT blocks reproduce segment-anything (windowed with padding, global, ViT-B width)", "[sam]") {
  NoGradGuard no_grad;
  struct Case {
    const char* name;
    int64_t dim, heads, window, grid;
  };
  for (const Case& c : {Case{"block_window", 64, 4, 5, 12}, Case{"block_global", 64, 4, 0, 8}, Case{"block_vit_b", 768, 12, 14, 16}}) {
    INFO(c.name);
    zoo::SamViTBlock block(c.dim, c.heads, 4, c.window, {c.grid, c.grid});
    test::fill_deterministic(block);
    const Tensor y = block.forward(test::sine_input({1, c.grid, c.grid, c.dim}));
    REQUIRE(y.sizes() == Shape{1, c.grid, c.grid, c.dim});
    if (c.dim == 768)
      test::check_golden(y, rows_of(std::string(c.name) + ".rows"));
    else
      EVIT_REQUIRE_CLOSE(y, g(std::string(c.name) + ".y"), 1e-4, 1e-5);
  }
}

TEST_CASE("SAM ViT encoders reproduce segment-anything (small, and ViT-B at reduced depth)", "[sam]") {
  NoGradGuard no_grad;
  zoo::SamViTConfig small;
  small.image_size = 128, small.embed_dim = 64, small.depth = 4, small.heads = 4, small.out_chans = 32;
  small.window_size = 3, small.global_blocks = {1, 3};
  auto enc = std::make_shared<zoo::SamViTEncoder>(small);
  Holder h1(enc);
  test::fill_deterministic(h1);
  // The output is LayerNorm-scaled (values of order 1) after four f32 blocks whose GEMMs round
  // differently per build and kernel: an absolute 5e-5 is what that leaves near zero.
  EVIT_REQUIRE_CLOSE(enc->forward(test::sine_input({1, 3, 128, 128})), g("encoder_small.y"), 1e-4, 5e-5);

  zoo::SamViTConfig b2 = zoo::sam_vit_config("sam-vit-b");
  b2.image_size = 256, b2.depth = 2, b2.global_blocks = {1};
  auto enc_b = std::make_shared<zoo::SamViTEncoder>(b2);
  Holder h2(enc_b);
  test::fill_deterministic(h2);
  const Tensor y = enc_b->forward(test::sine_input({1, 3, 256, 256}));
  REQUIRE(y.sizes() == Shape{1, 256, 16, 16});
  test::check_golden(y, rows_of("encoder_vit_b2.rows"));
}

TEST_CASE("relative positions are resampled linearly when the table has another length", "[sam]") {
  const Tensor table = g("rel_pos_resized.table");
  EVIT_REQUIRE_CLOSE(zoo::rel_pos_lookup(table, 7, 7), g("rel_pos_resized.y"), 1e-6, 1e-9);
}

TEST_CASE("SAM ViT-H, ViT-L and ViT-B have the reference parameter counts and key names", "[sam]") {
  const auto counts = g("counts").to_vector<int64_t>();
  REQUIRE(counts[0] == 637026048);  // the published ViT-H image encoder
  const char* names[] = {"sam-vit-h", "sam-vit-l", "sam-vit-b"};
  for (int i = 0; i < 3; ++i) {
    INFO(names[i]);
    zoo::SamViTEncoder enc(zoo::sam_vit_config(names[i]));
    CHECK(enc.num_parameters() == counts[i]);
    if (i == 2) {
      const auto sd = enc.state_dict();
      CHECK(sd.at("blocks.0.attn.rel_pos_h").sizes() == Shape{27, 64});   // 14x14 windows
      CHECK(sd.at("blocks.2.attn.rel_pos_w").sizes() == Shape{127, 64});  // global over 64x64
      CHECK(sd.at("pos_embed").sizes() == Shape{1, 64, 64, 768});
      for (const char* key : {"patch_embed.proj.weight", "patch_embed.proj.bias", "blocks.11.mlp.lin2.bias",
                              "blocks.5.attn.qkv.weight", "blocks.5.norm2.weight", "neck.0.weight", "neck.1.bias",
                              "neck.2.weight", "neck.3.weight"})
        CHECK(sd.count(key) == 1);
      CHECK(sd.count("neck.0.bias") == 0);
    }
  }
  CHECK_THROWS_WITH(zoo::sam_vit_config("vit_x"), Catch::Contains("unknown SAM ViT encoder"));
}

TEST_CASE("window partition, relative positions and their attention pass gradcheck", "[sam][autograd]") {
  // Partition then unpartition with padding (5x7 grid, windows of 3) is the identity, and so is its gradient.
  const Tensor x = test::random_leaf({2, 5, 7, 3}, -1, 1, 11);
  require_gradcheck(
      [](const std::vector<Tensor>& in) {
        auto [w, padded] = zoo::window_partition(in[0], 3);
        return zoo::window_unpartition(mul(w, w), 3, padded, {5, 7});
      },
      {x});
  auto [w, padded] = zoo::window_partition(x, 3);
  CHECK(w.sizes() == Shape{2 * 2 * 3, 3, 3, 3});
  CHECK((padded[0] == 6 && padded[1] == 9));
  CHECK(test::bitwise_equal(zoo::window_unpartition(w, 3, padded, {5, 7}).contiguous(), x.detach().contiguous()));
  // Relative positions, with and without resampling, inside the attention scores.
  const Tensor q = test::random_leaf({2, 3 * 4, 5}, -1, 1, 12);
  const Tensor attn = test::random_leaf({2, 3 * 4, 3 * 4}, -1, 1, 13);
  const Tensor rh = test::random_leaf({5, 5}, -1, 1, 14), rw = test::random_leaf({4, 5}, -1, 1, 15);
  require_gradcheck(
      [](const std::vector<Tensor>& in) {
        return softmax(zoo::add_decomposed_rel_pos(in[0], in[1], in[2], in[3], {3, 4}, {3, 4}), -1);
      },
      {attn, q, rh, rw});
  // A whole attention layer in f64, through its input.
  zoo::SamViTAttention layer(6, 2, {3, 3});
  test::fill_deterministic(layer);
  layer.to(DType::f64);
  const Tensor xa = test::random_leaf({1, 3, 3, 6}, -1, 1, 16);
  require_gradcheck([&](const std::vector<Tensor>& in) { return layer.forward(in[0]); }, {xa});
}
