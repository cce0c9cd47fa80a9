#include "train/train_transforms.h"

#include <algorithm>
#include <cmath>

#include "data/rand_augment.h"
#include "data/transforms.h"

namespace evit::train {

std::vector<data::Transform> training_transforms(const RunConfig& rc) {
  const DataConfig& d = rc.data;
  const int64_t crop = d.crop;
  switch (rc.task) {
    case Task::segmentation:
      return {data::random_scale_crop(0.5, 2.0, crop, crop, d.ignore_index), data::horizontal_flip(),
              data::photometric_jitter(0.2, 0.2, 0.2), data::normalize(d.mean, d.std)};
    case Task::classification: {
      std::vector<data::Transform> tf = {data::random_resized_crop(crop), data::horizontal_flip()};
      // RandAugment runs on the 8-bit image after crop and flip, before normalisation (timm's order);
      // geometric ops are bicubic and fill with the mean colour, as timm sets them up.
      if (const std::string& ra = rc.train.rand_augment; !ra.empty()) {
        std::array<uint8_t, 3> fill{};
        for (int i = 0; i < 3; ++i) fill[i] = static_cast<uint8_t>(std::clamp(std::lround(255 * d.mean[i]), 0L, 255L));
        tf.push_back(data::rand_augment(data::parse_rand_augment(ra, "config.train.rand_augment"),
                                        data::augment::Resample::bicubic, fill));
      }
      tf.push_back(data::normalize(d.mean, d.std));
      if (const double p = rc.train.random_erasing; p > 0) tf.push_back(data::random_erasing(p));
      return tf;
    }
    case Task::super_resolution:
      return {data::sr_patch_crop(crop, d.scale), data::sr_flip_rotate()};
    default:
      return {};  // sam_distill: no augmentation; sam_finetune: drawn inside its dataset
  }
}

}  // namespace evit::train
