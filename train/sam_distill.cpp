#include "train/sam_distill.h"

#include <algorithm>
#include <filesystem>

#include "autograd/grad_mode.h"
#include "core/dist/ordered_gather.h"
#include "core/error.h"
#include "data/image.h"
#include "data/sam_transforms.h"
#include "ops/ops.h"
#include "train/progress.h"
#include "train/sam_embeddings.h"
#include "train/sam_eval.h"
#include "train/sam_predictor.h"
#include "zoo/sam.h"

namespace evit::train {
namespace fs = std::filesystem;

SamDistillDataset::SamDistillDataset(const std::string& image_dir, const std::string& cache_dir, int64_t input_size)
    : image_dir_(image_dir), cache_dir_(cache_dir), input_size_(input_size) {
  EVIT_CHECK(fs::is_directory(image_dir), "sam_distill: image folder '", image_dir, "' does not exist");
  images_ = data::list_images(image_dir);
  EVIT_CHECK(!images_.empty(), "sam_distill: no PNG/JPEG images in '", image_dir, "'");
  int64_t missing = 0;
  std::string first;
  for (const std::string& im : images_)
    if (!fs::is_regular_file(embedding_path(cache_dir_, im))) {
      if (missing++ == 0) first = embedding_path(cache_dir_, im);
    }
  EVIT_CHECK(missing == 0, "sam_distill: ", missing, " of the ", images_.size(), " images of '", image_dir,
             "' have no teacher embedding in '", cache_dir_, "' (the first: '", first,
             "'); run `evit embed` or set data.teacher_weights");
}

data::Sample SamDistillDataset::load(int64_t index) const {
  const std::string& path = images_.at(static_cast<size_t>(index));
  data::Sample s;
  s.input = data::sam_preprocess(read_image(path), input_size_).input;
  s.target = squeeze(read_embedding(embedding_path(cache_dir_, path)), 0);
  s.id = path;
  return s;
}

std::string SamDistillDataset::describe() const {
  return "SAM distillation: " + std::to_string(images_.size()) + " images with teacher embeddings from '" +
         cache_dir_ + "', student input " + std::to_string(input_size_);
}

std::string sam_distill_split(const DataConfig& d, const std::string& split) {
  return (fs::path(d.root) / split).string();
}

int64_t fill_embedding_cache(const RunConfig& cfg) {
  const DataConfig& d = cfg.data;
  EVIT_CHECK(!d.embeddings.empty(), "config.data.embeddings: sam_distill needs the teacher-embedding cache folder");
  if (d.teacher_weights.empty()) return 0;
  std::vector<std::string> todo;
  for (const char* split : {"train", "val"}) {
    const std::string dir = sam_distill_split(d, split);
    EVIT_CHECK(fs::is_directory(dir), "sam_distill: image folder '", dir, "' does not exist");
    for (const std::string& im : data::list_images(dir))
      if (!fs::is_regular_file(embedding_path(d.embeddings, im))) todo.push_back(im);
  }
  if (todo.empty()) return 0;
  auto teacher = load_sam_teacher(d.teacher, d.teacher_weights);
  teacher->to(Device(cfg.train.device));
  std::printf("embedding %zu images with %s into %s\n", todo.size(), d.teacher.c_str(), d.embeddings.c_str());
  std::unique_ptr<Progress> bar;
  const EmbedStats st = embed_images(*teacher, d.teacher, todo, d.embeddings, [&](int64_t done, int64_t total) {
    if (!bar) bar = std::make_unique<Progress>(total, "embed");
    bar->update(done);
  });
  if (bar) bar->finish();
  return st.written;
}

Metrics sam_distill_metrics(zoo::Model& model, const data::Dataset& val, Device device, int64_t box_masks_per_image,
                            dist::Communicator* job) {
  auto* sam = dynamic_cast<zoo::EfficientViTSam*>(&model);
  EVIT_CHECK(sam != nullptr, "sam_distill evaluation: the model is not an EfficientViT-SAM model");
  // The model is owned elsewhere; the predictor only borrows it.
  SamPredictor predictor(std::shared_ptr<zoo::EfficientViTSam>(sam, [](zoo::EfficientViTSam*) {}));
  std::vector<SamPrompt> grid;
  for (int gy = 0; gy < 3; ++gy)
    for (int gx = 0; gx < 3; ++gx)
      grid.push_back({{{static_cast<float>((gx + 0.5) / 3 * data::kSamPromptFrame),
                        static_cast<float>((gy + 0.5) / 3 * data::kSamPromptFrame), 1}},
                      std::nullopt});
  auto best_masks = [&](const Tensor& embedding) {
    predictor.set_embedding(embedding, data::kSamPromptFrame, data::kSamPromptFrame);
    std::vector<std::vector<uint8_t>> masks;
    for (const SamPrediction& p : predictor.predict_batch(grid, true)) {
      const Tensor low = select(p.low_res, 0, p.best()).contiguous();
      const float* v = low.data_ptr<float>();
      std::vector<uint8_t> m(static_cast<size_t>(low.numel()));
      for (size_t i = 0; i < m.size(); ++i) m[i] = v[i] > 0;
      masks.push_back(std::move(m));
    }
    return masks;
  };
  // Per image: its embedding MSE, then the agreement of each grid prompt; image i on rank i mod W.
  const int ranks = job ? job->size() : 1, rank = job ? job->rank() : 0;
  std::vector<std::vector<double>> per_image(static_cast<size_t>(val.size()));
  for (int64_t i = rank; i < val.size(); i += ranks) {
    Generator unused(0);
    const data::Sample s = val.get(i, unused);
    const Tensor student = sam->image_embedding(unsqueeze(s.input, 0).to(device)).to(kCPU);
    const Tensor teacher = unsqueeze(s.target, 0);
    std::vector<double>& v = per_image[static_cast<size_t>(i)];
    v.push_back(mse_loss(student, teacher).item<double>());
    const auto a = best_masks(student.to(device)), b = best_masks(teacher.to(device));
    for (size_t k = 0; k < a.size(); ++k) {
      // Two empty masks agree completely.
      const bool both_empty = std::none_of(a[k].begin(), a[k].end(), [](uint8_t x) { return x; }) &&
                              std::none_of(b[k].begin(), b[k].end(), [](uint8_t x) { return x; });
      v.push_back(both_empty ? 100.0 : mask_iou_percent(a[k], b[k]));
    }
  }
  // Summed in image order on every rank: the one-process value whatever the number of ranks.
  dist::SingleProcess one;
  const std::vector<double> flat = dist::ordered_gather(job ? *job : one, per_image);
  const size_t per = 1 + grid.size();
  EVIT_CHECK(flat.size() == per * static_cast<size_t>(val.size()), "sam_distill evaluation: gathered ", flat.size(),
             " values for ", val.size(), " images");
  double mse = 0, agreement = 0;
  int64_t pairs = 0;
  for (size_t k = 0; k < flat.size(); ++k) {
    if (k % per == 0) mse += flat[k];
    else agreement += flat[k], ++pairs;
  }
  Metrics m = {{"val/embed_mse", mse / static_cast<double>(val.size())},
               {"val/agreement_mIoU", agreement / static_cast<double>(std::max<int64_t>(pairs, 1))}};
  if (const auto* d = dynamic_cast<const SamDistillDataset*>(&val); d && has_sa1b_annotations(d->image_dir()))
    m["val/box_mIoU"] = sam_box_miou_sa1b(predictor, data::list_sa1b(d->image_dir()), box_masks_per_image, job);
  return m;
}

}  // namespace evit::train
