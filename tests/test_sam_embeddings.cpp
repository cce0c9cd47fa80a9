// The teacher-embedding cache: loading a teacher from a released-checkpoint layout, embedding a
// folder resumably, reading embeddings from evit's files, other safetensors files and .npy, and the
// errors of `evit embed`.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "autograd/grad_mode.h"
#include "core/safetensors.h"
#include "data/image.h"
#include "data/sam_transforms.h"
#include "ops/ops.h"
#include "support/test_util.h"
#include "train/sam_embeddings.h"

using namespace evit;
namespace fs = std::filesystem;

namespace {

// A teacher small enough for a test that still gives 256x64x64 embeddings: 2x2 patches of a
// 128x128 input, two blocks (one windowed, one global).
zoo::SamViTConfig tiny_teacher() {
  zoo::SamViTConfig c;
  c.image_size = 128, c.patch_size = 2, c.embed_dim = 16, c.depth = 2, c.heads = 2, c.window_size = 8;
  c.global_blocks = {1};
  return c;
}

}  // namespace

TEST_CASE("teacher embeddings are cached per image, resumably, in f16", "[sam]") {
  const fs::path dir = fs::temp_directory_path() / "evit_test_embed";
  fs::remove_all(dir);
  fs::create_directories(dir / "images");
  std::vector<std::string> images;
  for (int i = 0; i < 3; ++i) {
    Image im(40 + 10 * i, 60, 3);
    for (size_t k = 0; k < im.data.size(); ++k) im.data[k] = static_cast<uint8_t>((k * (7 + i)) % 251);
    images.push_back((dir / "images" / ("img_" + std::to_string(i) + ".png")).string());
    encode_png(images.back(), im);
  }
  zoo::SamViTEncoder teacher(tiny_teacher());
  test::fill_deterministic(teacher);
  teacher.eval();
  const std::string cache = (dir / "cache").string();
  // Two images first (an interrupted run), then all three: the first two are skipped.
  auto first = train::embed_images(teacher, "tiny", {images[0], images[1]}, cache);
  CHECK((first.written == 2 && first.skipped == 0));
  const auto before = fs::last_write_time(train::embedding_path(cache, images[0]));
  auto second = train::embed_images(teacher, "tiny", images, cache);
  CHECK((second.written == 1 && second.skipped == 2));
  CHECK(fs::last_write_time(train::embedding_path(cache, images[0])) == before);

  StringMap meta;
  const TensorMap file = load_safetensors(train::embedding_path(cache, images[2]), &meta);
  CHECK(file.at("embedding").dtype() == DType::f16);
  CHECK(file.at("embedding").sizes() == Shape{256, 64, 64});
  CHECK(meta.at("teacher") == "tiny");
  CHECK(meta.at("image_size") == "60x60");
  // The cached values are the teacher's output rounded to f16.
  NoGradGuard no_grad;
  const Tensor want = teacher.forward(unsqueeze(data::sam_preprocess(read_image(images[2]), 128).input, 0));
  const Tensor got = train::read_embedding(train::embedding_path(cache, images[2]));
  REQUIRE(got.sizes() == Shape{1, 256, 64, 64});
  EVIT_REQUIRE_CLOSE(got, want, 1e-3, 1e-3);

  // Embeddings from elsewhere: one unnamed tensor in safetensors, [256, 64, 64].
  const std::string other = (dir / "other.safetensors").string();
  save_safetensors(other, {{"feat", squeeze(want, 0).contiguous()}});
  EVIT_REQUIRE_CLOSE(train::read_embedding(other), want, 0, 0);
  const std::string wrong = (dir / "wrong.safetensors").string();
  save_safetensors(wrong, {{"feat", zeros({256, 32, 32})}});
  CHECK_THROWS_WITH(train::read_embedding(wrong), Catch::Contains("wrong.safetensors") && Catch::Contains("[256, 64, 64]"));
}

TEST_CASE("a teacher loads from the released checkpoint layout and refuses other weights", "[sam]") {
  const fs::path dir = fs::temp_directory_path() / "evit_test_teacher";
  fs::remove_all(dir);
  fs::create_directories(dir);
  // A checkpoint with the wrong encoder (ViT-B-shaped keys at another width) is refused with the name.
  const std::string bad = (dir / "bad.safetensors").string();
  save_safetensors(bad, {{"image_encoder.pos_embed", zeros({1, 64, 64, 8})}, {"mask_decoder.x", zeros({1})}});
  CHECK_THROWS_WITH(train::load_sam_teacher("sam-vit-b", bad), Catch::Contains("bad.safetensors") &&
                                                                    Catch::Contains("sam-vit-b"));
  // A whole-SAM checkpoint: the image_encoder.* keys load, the others are ignored.
  zoo::SamViTEncoder source(tiny_teacher());
  test::fill_deterministic(source);
  TensorMap sam;
  for (const auto& [k, t] : source.state_dict()) sam["image_encoder." + k] = t;
  sam["prompt_encoder.no_mask_embed.weight"] = zeros({1, 256});
  const std::string good = (dir / "sam.safetensors").string();
  save_safetensors(good, sam);
  auto loaded = train::load_sam_teacher(tiny_teacher(), "tiny", good);
  for (const auto& [k, t] : source.state_dict()) CHECK(test::bitwise_equal(loaded->state_dict().at(k), t));
  auto [rc, out] = test::run_evit("embed --teacher sam-vit-q --weights " + bad + " --data " + dir.string() +
                                  " --output " + (dir / "cache").string());
  CHECK(rc != 0);
  CHECK_THAT(out, Catch::Contains("no PNG/JPEG images") || Catch::Contains("unknown SAM ViT encoder"));
}
