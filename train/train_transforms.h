// The augmentation each task's training set runs, built from the run's config. One place, so the
// trainer and the input-pipeline benchmark (bench/bench_input.cpp) run the same pipeline.
#pragma once
#include <vector>

#include "data/dataset.h"
#include "train/run_config.h"

namespace evit::train {

// Classification: random-resized crop, flip, RandAugment (train.rand_augment), normalisation,
// random erasing; segmentation: scale-crop, flip, photometric jitter, normalisation;
// super-resolution: patch crop, flip/rotate. The SAM tasks augment inside their datasets and get
// none here.
std::vector<data::Transform> training_transforms(const RunConfig& rc);

}  // namespace evit::train
