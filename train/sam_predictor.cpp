#include "train/sam_predictor.h"

#include <map>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "ops/ops.h"

namespace evit::train {

int64_t SamPrediction::best() const {
  const Tensor c = iou.to(kCPU).contiguous();
  const float* p = c.data_ptr<float>();
  int64_t k = 0;
  for (int64_t i = 1; i < c.numel(); ++i)
    if (p[i] > p[k]) k = i;
  return k;
}

Tensor SamPrediction::logits() const { return squeeze(data::sam_postprocess_masks(unsqueeze(low_res, 0), frame), 0); }

Tensor SamPrediction::logits(int64_t k) const {
  EVIT_CHECK(k >= 0 && k < low_res.size(0), "SamPrediction: no mask ", k, " of ", low_res.size(0));
  return squeeze(data::sam_postprocess_masks(unsqueeze(slice(low_res, 0, k, k + 1), 0), frame), 0);
}

std::vector<uint8_t> SamPrediction::mask(int64_t k) const {
  const Tensor c = squeeze(logits(k), 0).contiguous();
  const float* p = c.data_ptr<float>();
  std::vector<uint8_t> m(static_cast<size_t>(c.numel()));
  for (size_t i = 0; i < m.size(); ++i) m[i] = p[i] > 0;
  return m;
}

SamPredictor::SamPredictor(std::shared_ptr<zoo::EfficientViTSam> model) : model_(std::move(model)) {
  EVIT_CHECK(model_ != nullptr, "SamPredictor: no model");
}

void SamPredictor::set_image(const Image& image) {
  NoGradGuard no_grad;
  image_ = data::sam_preprocess(image, model_->image_size());
  const Device device = model_->parameters().empty() ? Device(kCPU) : model_->parameters()[0].device();
  embedding_ = model_->image_embedding(unsqueeze(image_.input, 0).to(device));
}

void SamPredictor::set_embedding(const Tensor& embedding, int64_t original_h, int64_t original_w) {
  EVIT_CHECK(embedding.dim() == 4 && embedding.size(0) == 1 && embedding.size(1) == 256 && embedding.size(2) == 64 &&
                 embedding.size(3) == 64,
             "SamPredictor: an image embedding must be [1, 256, 64, 64], got ", embedding.desc());
  image_ = data::SamImage{};
  image_.original_h = original_h, image_.original_w = original_w;
  std::tie(image_.frame_h, image_.frame_w) = data::sam_resize_size(original_h, original_w, data::kSamPromptFrame);
  embedding_ = embedding;
}

SamPrediction SamPredictor::predict(const SamPrompt& prompt, bool multimask) {
  return predict_batch({prompt}, multimask).at(0);
}

std::vector<SamPrediction> SamPredictor::predict_batch(const std::vector<SamPrompt>& prompts, bool multimask) {
  EVIT_CHECK(embedding_.defined(), "SamPredictor: set an image before predicting");
  NoGradGuard no_grad;
  // Prompt tokens per set, in the prompt frame; sets with equal token counts decode together.
  std::map<int64_t, std::vector<size_t>> groups;
  std::vector<Tensor> sparse(prompts.size());
  Tensor dense;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const SamPrompt& p = prompts[i];
    EVIT_CHECK(!p.points.empty() || p.box, "SamPredictor: prompt set ", i, " has neither points nor a box");
    std::vector<zoo::SamPoint> points;
    for (const zoo::SamPoint& q : p.points) {
      EVIT_CHECK(q.label == 0 || q.label == 1, "SamPredictor: point label ", q.label, " of prompt set ", i,
                 " must be 1 (foreground) or 0 (background)");
      const auto f = data::sam_to_prompt_frame(image_, q.x, q.y);
      points.push_back({f[0], f[1], q.label});
    }
    std::optional<std::array<float, 4>> box;
    if (p.box) {
      const auto a = data::sam_to_prompt_frame(image_, (*p.box)[0], (*p.box)[1]);
      const auto b = data::sam_to_prompt_frame(image_, (*p.box)[2], (*p.box)[3]);
      box = std::array<float, 4>{a[0], a[1], b[0], b[1]};
    }
    auto [s, d] = model_->prompt_encoder->forward(points, box);
    sparse[i] = s;
    dense = d;  // without a mask input, every set's dense embedding is no_mask_embed
    groups[s.size(1)].push_back(i);
  }
  const Device device = embedding_.device();
  const Tensor pe = model_->prompt_encoder->dense_pe().to(device);
  std::vector<SamPrediction> out(prompts.size());
  for (const auto& [tokens, members] : groups) {
    std::vector<Tensor> batch;
    for (size_t i : members) batch.push_back(sparse[i]);
    auto [masks, iou] = model_->mask_decoder->forward(embedding_, pe, cat(batch, 0).to(device), dense.to(device),
                                                      multimask);
    masks = masks.to(kCPU).contiguous();
    iou = iou.to(kCPU).contiguous();
    for (size_t j = 0; j < members.size(); ++j) {
      SamPrediction& r = out[members[j]];
      r.low_res = select(masks, 0, static_cast<int64_t>(j)).contiguous();
      r.iou = select(iou, 0, static_cast<int64_t>(j)).contiguous();
      r.frame = image_;
      r.frame.input = Tensor();
    }
  }
  return out;
}

}  // namespace evit::train
