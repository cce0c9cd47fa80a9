// Input-pipeline throughput: the classification training transform of a config (by default the
// ImageNet recipe of configs/imagenet_b1.json: decode, random-resized crop to 224, flip,
// RandAugment, normalisation) applied to every image of an ImageNet-layout folder, on one thread;
// the evit side of bench/input_torch.py (torchvision + timm on PIL images, the same recipe).
//
//   bench_input [--config FILE] [--passes P] ROOT SPLIT
//
// ROOT/SPLIT/<wnid>/*.JPEG as ImageFolderDataset reads it. Each pass loads every image from its
// file and transforms it with the generator the data loader would give it in that epoch (pass
// number), so every pass draws fresh crops and augmentations. Prints one JSON line:
// {"side": "evit", "images": n, "seconds": s, "images_per_s": n / s}.
#include <chrono>
#include <cstdio>
#include <string>

#include "core/error.h"
#include "core/parallel.h"
#include "data/dataset.h"
#include "train/config.h"
#include "train/run_config.h"
#include "train/train_transforms.h"

using namespace evit;

int main(int argc, char** argv) {
  try {
    std::string config = "configs/imagenet_b1.json", root, split;
    int64_t passes = 3;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--config" && i + 1 < argc) config = argv[++i];
      else if (a == "--passes" && i + 1 < argc) passes = std::stoll(argv[++i]);
      else if (root.empty()) root = a;
      else if (split.empty()) split = a;
      else EVIT_CHECK(false, "bench_input: unexpected argument '", a, "'");
    }
    EVIT_CHECK(!root.empty() && !split.empty(), "usage: bench_input [--config FILE] [--passes P] ROOT SPLIT");
    set_num_threads(1);  // images per second per core: the loader runs one image per worker thread
    const train::RunConfig rc = train::parse_run_config(train::load_config_file(config, train::training_config_schema()));
    EVIT_CHECK(rc.task == train::Task::classification, "bench_input: ", config, " is not a classification config");
    data::ImageFolderDataset set(root, split);
    set.set_eight_bit(true);  // as the trainer loads it
    set.set_transforms(train::training_transforms(rc));
    // One untimed pass warms the page cache and the allocator, as the other side's does.
    auto run_pass = [&](int64_t epoch) {
      double checksum = 0;
      for (int64_t i = 0; i < set.size(); ++i) {
        Generator g = data::sample_generator(rc.train.seed, epoch, i);
        checksum += set.get(i, g).input.numel();
      }
      return checksum;
    };
    run_pass(0);
    const auto t0 = std::chrono::steady_clock::now();
    double checksum = 0;
    for (int64_t p = 1; p <= passes; ++p) checksum += run_pass(p);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const int64_t n = passes * set.size();
    EVIT_CHECK(checksum == static_cast<double>(n) * 3 * rc.data.crop * rc.data.crop, "bench_input: unexpected output sizes");
    std::printf("{\"side\": \"evit\", \"images\": %lld, \"seconds\": %.4f, \"images_per_s\": %.2f}\n", (long long)n, s,
                static_cast<double>(n) / s);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_input: %s\n", e.what());
    return 1;
  }
}
