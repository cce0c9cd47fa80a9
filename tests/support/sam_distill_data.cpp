#include "tests/support/sam_distill_data.h"

#include <filesystem>
#include <vector>

#include <unistd.h>

#include "data/image.h"
#include "tests/support/sa1b_data.h"
#include "tests/support/test_util.h"
#include "train/sam_embeddings.h"
#include "zoo/sam_vit.h"

namespace evit::test {
namespace fs = std::filesystem;
namespace {

// Images in ROOT/train and ROOT/val (blobs on gradients, several sizes) and the embeddings of a
// tiny teacher (2x2 patches of 128x128, two blocks) in ROOT/cache.
void write_distill_data(const fs::path& root) {
  std::vector<std::string> all;
  for (const auto& [split, n] : {std::pair<std::string, int>{"train", 4}, {"val", 2}}) {
    fs::create_directories(root / split);
    for (int i = 0; i < n; ++i) {
      const int64_t h = 48 + 8 * i, w = 64;
      Image im(h, w, 3);
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          const bool blob = (x - 20 - 6 * i) * (x - 20 - 6 * i) + (y - 24) * (y - 24) < 150;
          for (int64_t c = 0; c < 3; ++c)
            im.data[(y * w + x) * 3 + c] = static_cast<uint8_t>(blob ? 200 - 40 * c : (x * 3 + y * (c + 1) + 17 * i) % 256);
        }
      all.push_back((root / split / (split + "_" + std::to_string(i) + ".png")).string());
      encode_png(all.back(), im);
    }
  }
  // An SA-1B image with annotations in val/: evaluation adds the box mIoU.
  test::write_sa1b_scene((root / "val").string(), 7);
  all.push_back((root / "val" / "sa_7.jpg").string());
  zoo::SamViTConfig c;
  c.image_size = 128, c.patch_size = 2, c.embed_dim = 16, c.depth = 2, c.heads = 2, c.window_size = 8;
  c.global_blocks = {1};
  zoo::SamViTEncoder teacher(c);
  test::fill_deterministic(teacher);
  teacher.eval();
  train::embed_images(teacher, "tiny", all, (root / "cache").string());
}

}  // namespace

std::string distill_data(const std::string& name) {
  const fs::path root = fs::temp_directory_path() / name;
  const fs::path done = root / "cache" / "sa_7.safetensors";
  if (fs::exists(done)) return root.string();
  const fs::path staging = fs::temp_directory_path() / (name + ".staging." + std::to_string(::getpid()));
  fs::remove_all(staging);
  write_distill_data(staging);
  if (!fs::exists(done)) {
    fs::remove_all(root);  // a set left incomplete by an interrupted run
    std::error_code ec;
    fs::rename(staging, root, ec);  // fails only when another process got there first
  }
  fs::remove_all(staging);
  return root.string();
}

}  // namespace evit::test
