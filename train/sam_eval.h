// Promptable-segmentation evaluation of a SAM model on instance annotations (COCO val2017, LVIS v1
// val), as the EfficientViT-SAM paper reports it:
//
// - every annotation with area >= 1 (crowd ones included), in the annotation file's order of
//   images, skipping images whose file is not in the image folder (the count is reported);
// - ground truth: the annotation's mask (pycocotools' rasterisation, data/instances.h);
// - prompt "box": the annotation's box (xywh -> xyxy); "points": k clicks placed by the RITM
//   clicker (Clicker below), every round decoding all clicks so far;
// - multimask output, the mask with the highest predicted IoU kept;
// - IoU = |A ∧ B| / (|A ∨ B| + 1e-7) · 100 per instance; mIoU over instances, and over the
//   small (area <= 32²), medium (32² <= area <= 96²) and large (area >= 96²) buckets of the
//   annotation's stated area (both ends inclusive, as the reference script filters).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/dist/communicator.h"
#include "data/instances.h"
#include "train/sam_predictor.h"

namespace evit::train {

// IoU of two same-size 0/1 masks, in percent.
double mask_iou_percent(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b);

// The RITM interactive-segmentation clicker: the next click goes to the pixel farthest from the
// boundary of the larger error region (exact Euclidean distance, the image padded by one pixel of
// background), positive when that region is the false negatives; the first of equally far pixels
// in row-major order wins; pixels clicked before count as distance 0. With no error at all the
// click is a negative one at the first pixel (the reference's behaviour).
struct Click {
  int64_t x = 0, y = 0;
  bool positive = true;
};
class Clicker {
 public:
  Clicker(std::vector<uint8_t> ground_truth, int64_t h, int64_t w);
  // Places the next click given the current prediction (0/1, h×w) and returns it.
  const Click& next(const std::vector<uint8_t>& prediction);
  const std::vector<Click>& clicks() const { return clicks_; }

 private:
  std::vector<uint8_t> gt_, clicked_;
  int64_t h_, w_;
  std::vector<Click> clicks_;
};

struct SamEvalOptions {
  std::string prompt = "box";      // "box" or "points"
  std::vector<int> clicks{1, 3, 5};  // for "points": report the IoU after these many clicks
  int64_t max_images = 0;           // 0: all
};

// mIoU per bucket ("all", "small", "medium", "large") and the instance counts behind them.
struct SamBucketScores {
  std::map<std::string, double> miou;
  std::map<std::string, int64_t> count;
};

struct SamInstanceScore {
  int64_t annotation_id = 0, image_id = 0;
  double area = 0;
  std::vector<double> iou;  // box: one value; points: one per entry of SamEvalOptions::clicks
  std::vector<Click> clicks;  // points: every click placed, in order
};

struct SamEvalResult {
  std::vector<SamInstanceScore> instances;
  std::vector<std::string> columns;           // "box", or "1 click", "3 clicks", ...
  std::vector<SamBucketScores> scores;        // one per column
  int64_t images = 0, images_missing = 0, skipped_small = 0;
};

// Buckets the instance IoUs of column `column`.
SamBucketScores sam_bucket_scores(const std::vector<SamInstanceScore>& instances, size_t column);

// Evaluates over the images of `set` found in `image_root`; `progress` (if given) is called before
// the first image and after each with (images done, images to do). With `job` (all its ranks
// calling), rank r scores the images n ≡ r (mod W) and every rank gets the one-process result,
// instances in image order (core/dist/ordered_gather.h); progress then counts rank r's images
// as n + W.
SamEvalResult evaluate_sam(SamPredictor& predictor, const data::InstanceSet& set, const std::string& image_root,
                           const SamEvalOptions& options,
                           const std::function<void(int64_t, int64_t)>& progress = nullptr,
                           dist::Communicator* job = nullptr);

// Masks for detector boxes, in the COCO results format (EfficientViT-SAM's box-from-detector
// evaluation): `detections` is a COCO results list ([{"image_id", "category_id", "bbox": [x, y, w,
// h], "score"}, ...]); each entry comes back with "segmentation": {"size": [h, w], "counts": RLE
// string} of the mask its box prompts (multimask, highest predicted IoU), in the input order, for
// pycocotools' or LVIS's COCOeval (segm). Entries whose image is not in `set` or whose box is not
// four finite numbers are errors naming the entry.
nlohmann::json sam_masks_for_detections(SamPredictor& predictor, const data::InstanceSet& set,
                                        const std::string& image_root, const nlohmann::json& detections,
                                        const std::function<void(int64_t, int64_t)>& progress = nullptr);

// Box-prompt mIoU (percent, all instances) over SA-1B images, scoring the first `masks_per_image`
// annotations of each (0: all); stage-2 training's validation metric. With `job`, rank r scores
// the images i ≡ r (mod W) and every rank gets the one-process value bit for bit (the instance
// IoUs gathered in image order, core/dist/ordered_gather.h).
double sam_box_miou_sa1b(SamPredictor& predictor, const std::vector<data::Sa1bEntry>& entries,
                         int64_t masks_per_image, dist::Communicator* job = nullptr);

// Whether a folder holds SA-1B annotation files (sa_N.json), so that box mIoU can be measured there.
bool has_sa1b_annotations(const std::string& dir);

// The per-bucket table, one row per column:
//   prompt      all   small  medium   large   (instances: N / S / M / L)
std::string format_sam_table(const SamEvalResult& r);

}  // namespace evit::train
