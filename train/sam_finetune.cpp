#include "train/sam_finetune.h"

#include <algorithm>
#include <filesystem>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "data/coco_rle.h"
#include "data/image.h"
#include "data/resize_u8.h"
#include "data/sam_transforms.h"
#include "ops/ops.h"
#include "train/sam_eval.h"
#include "train/sam_predictor.h"

namespace evit::train {
namespace fs = std::filesystem;

namespace {

// A uniform integer in [0, n).
int64_t uniform_index(Generator& g, int64_t n) {
  return std::min<int64_t>(n - 1, static_cast<int64_t>(g.uniform_double() * static_cast<double>(n)));
}

// `k` distinct values of [0, n) in random order (a partial Fisher-Yates shuffle).
std::vector<int64_t> draw_without_replacement(Generator& g, int64_t n, int64_t k) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = i;
  for (int64_t i = 0; i < k; ++i) std::swap(v[i], v[i + uniform_index(g, n - i)]);
  v.resize(static_cast<size_t>(k));
  return v;
}

void flip_rows(uint8_t* data, int64_t h, int64_t w, int64_t c) {
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w / 2; ++x)
      for (int64_t k = 0; k < c; ++k) std::swap(data[(y * w + x) * c + k], data[(y * w + w - 1 - x) * c + k]);
}

}  // namespace

SamFinetuneDataset::SamFinetuneDataset(const std::string& dir, int64_t input_size, int64_t masks_per_image, bool flip,
                                       int64_t limit)
    : entries_(data::list_sa1b(dir)), input_size_(input_size), masks_per_image_(masks_per_image), flip_(flip) {
  EVIT_CHECK(!entries_.empty(), "sam_finetune: no SA-1B annotation files (sa_N.json with sa_N.jpg) in '", dir, "'");
  if (limit > 0 && limit < static_cast<int64_t>(entries_.size())) entries_.resize(static_cast<size_t>(limit));
  EVIT_CHECK(masks_per_image >= 1, "config.data.masks_per_image must be >= 1, got ", masks_per_image);
}

data::Sample SamFinetuneDataset::load(int64_t index) const {
  const data::Sa1bEntry& e = entries_.at(static_cast<size_t>(index));
  data::Sample s;
  s.input = data::sam_preprocess(read_image(e.image_path), input_size_).input;
  s.id = e.image_path;
  return s;
}

data::Sample SamFinetuneDataset::get(int64_t index, Generator& rng) const {
  EVIT_CHECK(index >= 0 && index < size(), describe(), ": index ", index, " out of range [0, ", size(), ")");
  const data::Sa1bEntry& e = entries_[static_cast<size_t>(index)];
  const data::InstanceSet set = data::read_sa1b_image(e.json_path);
  const int64_t n = static_cast<int64_t>(set.annotations.size());
  EVIT_CHECK(n > 0, "sam_finetune: '", e.json_path, "' has no annotations");
  // The reference's choice: M of the annotations without replacement, or every one repeated
  // M / n times plus a random remainder.
  const int64_t M = masks_per_image_;
  std::vector<int64_t> chosen;
  if (n > M) {
    chosen = draw_without_replacement(rng, n, M);
  } else {
    for (int64_t r = 0; r < M / n; ++r)
      for (int64_t i = 0; i < n; ++i) chosen.push_back(i);
    for (int64_t i : draw_without_replacement(rng, n, M % n)) chosen.push_back(i);
  }
  const bool flip = flip_ && rng.uniform_double() < 0.5;
  Image image = read_image(e.image_path);
  const data::InstanceImage& info = set.images.at(0);
  EVIT_CHECK(image.height == info.height && image.width == info.width, "sam_finetune: '", e.image_path, "' is ",
             image.height, "x", image.width, " but '", e.json_path, "' says ", info.height, "x", info.width);
  if (flip) {
    EVIT_CHECK(image.bit_depth == 8, "sam_finetune: '", e.image_path, "' must be an 8-bit image");
    flip_rows(image.data.data(), image.height, image.width, image.channels);
  }
  const int64_t S = input_size_, H = image.height, W = image.width;
  const auto [h, w] = data::sam_resize_size(H, W, S);
  data::Sample s;
  s.input = data::sam_preprocess(image, S).input;
  s.id = e.image_path;
  s.target = zeros({M, S, S});
  s.aux = empty({M, 4});
  float* target = s.target.data_ptr<float>();
  float* boxes = s.aux.data_ptr<float>();
  // The box in the input frame (x scaled by w/W, y by h/H), then in the 1024 prompt frame.
  const double fx = static_cast<double>(w) / static_cast<double>(W) * data::kSamPromptFrame / S;
  const double fy = static_cast<double>(h) / static_cast<double>(H) * data::kSamPromptFrame / S;
  std::map<int64_t, std::vector<float>> resized;  // per annotation: its soft h×w mask
  for (int64_t m = 0; m < M; ++m) {
    const int64_t a = chosen[static_cast<size_t>(m)];
    const data::InstanceAnnotation& ann = set.annotations[static_cast<size_t>(a)];
    auto it = resized.find(a);
    if (it == resized.end()) {
      std::vector<uint8_t> bits = data::rle_decode(data::annotation_mask(set, ann));
      Image mask(H, W, 1);
      for (size_t i = 0; i < bits.size(); ++i) mask.data[i] = bits[i] ? 255 : 0;
      if (flip) flip_rows(mask.data.data(), H, W, 1);
      // Antialiased bilinear, as the reference resizes its float masks: soft edges (in 1/255 steps).
      const Image small = h == H && w == W ? mask : data::resize_bilinear_pil(mask, h, w);
      std::vector<float> soft(small.data.size());
      for (size_t i = 0; i < soft.size(); ++i) soft[i] = static_cast<float>(small.data[i]) / 255.f;
      it = resized.emplace(a, std::move(soft)).first;
    }
    float* plane = target + m * S * S;
    for (int64_t y = 0; y < h; ++y) std::copy_n(it->second.data() + y * w, w, plane + y * S);
    auto [bx, by, bw, bh] = ann.bbox;
    if (flip) bx = static_cast<double>(W) - bw - bx;
    boxes[m * 4 + 0] = static_cast<float>(bx * fx);
    boxes[m * 4 + 1] = static_cast<float>(by * fy);
    boxes[m * 4 + 2] = static_cast<float>((bx + bw) * fx);
    boxes[m * 4 + 3] = static_cast<float>((by + bh) * fy);
  }
  apply_transforms(s, rng);
  return s;
}

std::string SamFinetuneDataset::describe() const {
  return "SAM fine-tuning: " + std::to_string(entries_.size()) + " SA-1B images, " +
         std::to_string(masks_per_image_) + " masks each, input " + std::to_string(input_size_) +
         (flip_ ? ", random flips" : "");
}

Tensor sam_finetune_batch_loss(zoo::EfficientViTSam& model, const Tensor& input, const Tensor& target,
                               const Tensor& boxes, const SamFinetuneOptions& o, Generator& g) {
  EVIT_CHECK(input.dim() == 4 && target.dim() == 4 && target.size(0) == input.size(0) && boxes.dim() == 3 &&
                 boxes.size(0) == input.size(0) && boxes.size(1) == target.size(1) && boxes.size(2) == 4,
             "sam_finetune: expected input [B, 3, S, S], target [B, M, S, S] and boxes [B, M, 4], got ", input.desc(),
             ", ", target.desc(), " and ", boxes.desc());
  const int64_t B = input.size(0), M = target.size(1), S = target.size(2);
  const double to_prompt = static_cast<double>(data::kSamPromptFrame) / static_cast<double>(S);
  const bool multimask = g.uniform_double() < o.multimask_prob;
  const Tensor embedding = model.image_embedding(input);
  const Tensor pe = model.prompt_encoder->dense_pe().to(input.device());
  const Tensor host_target = target.to(kCPU).contiguous(), host_boxes = boxes.to(kCPU).contiguous();
  std::vector<Tensor> masks;
  for (int64_t b = 0; b < B; ++b) {
    // Points: n foreground pixels of each mask (any value > 0 of the soft mask); the reference
    // falls back to boxes when a mask has fewer than n.
    std::vector<std::vector<zoo::SamPoint>> points;
    if (g.uniform_double() >= o.box_prob) {
      const int64_t count = 1 + uniform_index(g, o.max_points);
      for (int64_t m = 0; m < M && static_cast<int64_t>(points.size()) == m; ++m) {
        const float* plane = host_target.data_ptr<float>() + (b * M + m) * S * S;
        std::vector<int64_t> fg;
        for (int64_t i = 0; i < S * S; ++i)
          if (plane[i] > 0) fg.push_back(i);
        if (static_cast<int64_t>(fg.size()) < count) break;
        std::vector<zoo::SamPoint> pts;
        for (int64_t k : draw_without_replacement(g, static_cast<int64_t>(fg.size()), count)) {
          const int64_t i = fg[static_cast<size_t>(k)];
          pts.push_back({static_cast<float>(static_cast<double>(i % S) * to_prompt),
                         static_cast<float>(static_cast<double>(i / S) * to_prompt), 1});
        }
        points.push_back(std::move(pts));
      }
      if (static_cast<int64_t>(points.size()) < M) points.clear();
    }
    std::vector<Tensor> sparse;
    Tensor dense;
    for (int64_t m = 0; m < M; ++m) {
      std::optional<std::array<float, 4>> box;
      if (points.empty()) {
        const float* v = host_boxes.data_ptr<float>() + (b * M + m) * 4;
        box = std::array<float, 4>{v[0], v[1], v[2], v[3]};
      }
      auto [s, d] = model.prompt_encoder->forward(points.empty() ? std::vector<zoo::SamPoint>{} : points[m], box);
      sparse.push_back(s);
      dense = d;
    }
    auto [low, iou] = model.mask_decoder->forward(slice(embedding, 0, b, b + 1), pe, cat(sparse, 0).to(input.device()),
                                                  dense.to(input.device()), multimask);
    masks.push_back(low);
  }
  return sam_finetune_loss(cat(masks, 0), reshape(target, {B * M, S, S}), o.loss, g);
}

Metrics sam_box_metrics(zoo::EfficientViTSam& model, const std::vector<data::Sa1bEntry>& entries,
                        int64_t masks_per_image, dist::Communicator* job) {
  // The model is owned elsewhere; the predictor only borrows it.
  SamPredictor predictor(std::shared_ptr<zoo::EfficientViTSam>(&model, [](zoo::EfficientViTSam*) {}));
  return {{"val/box_mIoU", sam_box_miou_sa1b(predictor, entries, masks_per_image, job)}};
}

}  // namespace evit::train
