// Datasets: indexed collections of samples read from the official folder layouts.
//
// A sample's randomness (crops, flips, jitter) comes from a generator seeded by (seed, epoch,
// index) — see sample_generator() — so what a sample looks like never depends on which worker
// thread loaded it or how many workers there are.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/generator.h"
#include "core/tensor.h"
#include "data/image.h"

namespace evit::data {

struct Sample {
  // f32 [3,H,W], values in [0,1] until a Normalize transform runs. A dataset asked for 8-bit
  // samples (ImageFolderDataset::set_eight_bit) gives the decoded image as u8 [H,W,3] instead, for
  // pipelines whose leading transforms work on 8-bit pixels as the PIL images of torchvision do
  // (random_resized_crop, horizontal_flip, rand_augment); normalize turns it into floats, and the
  // loader converts any sample still 8-bit when it forms the batch.
  Tensor input;
  Tensor target;  // segmentation: i64 [H,W] (255 = ignore); classification: i64 []; SR: f32 [3,sH,sW]
  std::string id; // the file the sample came from
  Tensor aux;     // optional, task-specific, stacked like target (SAM fine-tuning: f32 [M, 4] boxes)
};

// A transform edits a sample in place, drawing randomness from `rng`.
using Transform = std::function<void(Sample&, Generator& rng)>;

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  // The raw sample i (decoded, before transforms).
  virtual Sample load(int64_t index) const = 0;
  // One line: what, where, how many.
  virtual std::string describe() const = 0;

  // load() followed by the dataset's transforms. Datasets whose raw sample is itself random
  // (SAM fine-tuning draws masks per epoch) override it.
  virtual Sample get(int64_t index, Generator& rng) const;
  void set_transforms(std::vector<Transform> t) { transforms_ = std::move(t); }

 protected:
  void apply_transforms(Sample& s, Generator& rng) const {
    for (auto& t : transforms_) t(s, rng);
  }

 private:
  std::vector<Transform> transforms_;
};

// The first `limit` samples of another dataset (its transforms are this one's).
class Subset : public Dataset {
 public:
  Subset(std::shared_ptr<Dataset> base, int64_t limit);
  int64_t size() const override { return n_; }
  Sample load(int64_t index) const override { return base_->load(index); }
  // The base's sample (its own randomness included), then this subset's transforms.
  Sample get(int64_t index, Generator& rng) const override;
  std::string describe() const override;

 private:
  std::shared_ptr<Dataset> base_;
  int64_t n_;
};

// The per-sample generator for (seed, epoch, index): a splitmix64 mix of the three.
Generator sample_generator(uint64_t seed, int64_t epoch, int64_t index);

// ---- segmentation -------------------------------------------------------------------------------
// Pairs of (image, label PNG); labels are mapped through a 256-entry table to class ids
// (255 = ignore). Checks that each label has the image's size when loading.
// An 8-bit label image (gray, or RGB with equal channels) mapped to class ids through label_map;
// ids above max_label_id are counted. `what` names the label in errors.
struct LabelClasses {
  Tensor classes;  // [H, W] i64
  int64_t out_of_range = 0;
  int first_out_of_range = -1;  // the first id above max_label_id met, or -1
};
LabelClasses label_image_to_classes(const Image& label, const std::vector<uint8_t>& label_map, int max_label_id,
                                    const std::string& what);

class SegmentationDataset : public Dataset {
 public:
  // label_map turns each 8-bit label id into a class (or 255: ignore). Ids above max_label_id
  // are not ids of the dataset at all: they are ignored too, but counted, and the first file
  // holding one is reported once on stderr (a wrong label folder or encoding shows at once).
  SegmentationDataset(std::string name, std::vector<std::pair<std::string, std::string>> files,
                      std::vector<uint8_t> label_map, int64_t num_classes, int max_label_id = 255);
  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  Sample load(int64_t index) const override;
  std::string describe() const override;
  int64_t num_classes() const { return num_classes_; }
  // Pixels with ids above max_label_id in the labels loaded so far.
  int64_t out_of_range_pixels() const { return out_of_range_pixels_.load(); }

 private:
  std::string name_;
  std::vector<std::pair<std::string, std::string>> files_;
  std::vector<uint8_t> label_map_;
  int64_t num_classes_;
  int max_label_id_;
  mutable std::atomic<int64_t> out_of_range_pixels_{0};  // loader threads load concurrently
  mutable std::atomic<bool> out_of_range_reported_{false};
};

// Cityscapes: root/leftImg8bit/<split>/<city>/*_leftImg8bit.png with
// root/gtFine/<split>/<city>/*_gtFine_labelIds.png, labelIds mapped to the 19 trainIds.
std::shared_ptr<SegmentationDataset> cityscapes(const std::string& root, const std::string& split);
// The names of the 19 trainIds, in order.
const std::vector<std::string>& cityscapes_class_names();
// The labelId -> trainId table (255 for ignored ids).
std::vector<uint8_t> cityscapes_label_map();
// ADE20K: root/ADEChallengeData2016/images/<training|validation>/*.jpg with annotations/.../*.png
// (root may also be the ADEChallengeData2016 folder itself); label v -> v-1, 0 -> ignore.
std::shared_ptr<SegmentationDataset> ade20k(const std::string& root, const std::string& split);

// ---- classification -----------------------------------------------------------------------------
// ImageNet layout: root/<split>/<wnid>/*.JPEG (any image file), classes in sorted wnid order.
class ImageFolderDataset : public Dataset {
 public:
  ImageFolderDataset(const std::string& root, const std::string& split);
  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  Sample load(int64_t index) const override;
  std::string describe() const override;
  const std::vector<std::string>& classes() const { return classes_; }
  // Samples as decoded 8-bit RGB (u8 [H,W,3], see Sample::input) instead of floats: the training
  // pipeline then crops, resizes and augments 8-bit pixels and converts only the 224×224 result,
  // not the whole photo. 16-bit files still load as floats.
  void set_eight_bit(bool on) { eight_bit_ = on; }

 private:
  std::string dir_;
  bool eight_bit_ = false;
  std::vector<std::string> classes_;
  std::vector<std::pair<std::string, int64_t>> files_;
};

// ---- super-resolution -----------------------------------------------------------------------------
// HR images of a folder (DIV2K_train_HR, Set5/HR, FFHQ, ...). LR images come from `lr_dir` when
// given (DIV2K's X2/X3/X4 folders: the same stem, optionally suffixed "x<scale>"), otherwise
// they are made on the fly with MATLAB-compatible bicubic imresize of the HR image cropped to a
// multiple of the scale. input = LR, target = HR, both f32 in [0,1].
class SRDataset : public Dataset {
 public:
  SRDataset(const std::string& hr_dir, int64_t scale, const std::string& lr_dir = "");
  int64_t size() const override { return static_cast<int64_t>(hr_files_.size()); }
  Sample load(int64_t index) const override;
  std::string describe() const override;
  int64_t scale() const { return scale_; }

 private:
  std::string hr_dir_, lr_dir_;
  int64_t scale_;
  std::vector<std::string> hr_files_;
};

// The HR folder of a super-resolution dataset's split ("train" or "val"): root/<split>, DIV2K's
// DIV2K_{train,valid}_HR, or root/<split>/HR. Throws naming root and the names looked for.
std::string sr_hr_folder(const std::string& root, const std::string& split);

// An image file as f32 [3,H,W] in [0,1]: gray is repeated to RGB, alpha dropped.
Tensor load_rgb(const std::string& path);
// The same image as 8-bit RGB, u8 [H,W,3] (a 16-bit file: load_rgb's floats).
Tensor load_rgb_u8(const std::string& path);

// Sorted image files (png, jpg, jpeg, bmp-less: PNG/JPEG only) directly inside `dir`.
std::vector<std::string> list_images(const std::string& dir);

}  // namespace evit::data
