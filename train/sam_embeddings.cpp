#include "train/sam_embeddings.h"

#include <filesystem>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "data/image.h"
#include "data/npy.h"
#include "data/sam_transforms.h"
#include "ops/ops.h"

namespace evit::train {
namespace fs = std::filesystem;

std::shared_ptr<zoo::SamViTEncoder> load_sam_teacher(const std::string& name, const std::string& path) {
  return load_sam_teacher(zoo::sam_vit_config(name), name, path);
}

std::shared_ptr<zoo::SamViTEncoder> load_sam_teacher(const zoo::SamViTConfig& config, const std::string& name,
                                                     const std::string& path) {
  auto teacher = std::make_shared<zoo::SamViTEncoder>(config);
  const TensorMap all = load_safetensors(path);
  TensorMap encoder;
  const std::string prefix = "image_encoder.";
  for (const auto& [k, t] : all)
    if (k.rfind(prefix, 0) == 0) encoder[k.substr(prefix.size())] = t;
  if (encoder.empty()) encoder = all;  // a file of the encoder's own keys
  try {
    teacher->load_state_dict(encoder, true);
  } catch (const Error& e) {
    EVIT_THROW("'", path, "' does not hold the ", name, " image encoder: ", e.what());
  }
  teacher->eval();
  return teacher;
}

std::string embedding_path(const std::string& cache_dir, const std::string& image_path) {
  return (fs::path(cache_dir) / (fs::path(image_path).stem().string() + ".safetensors")).string();
}

Tensor read_embedding(const std::string& path) {
  Tensor t;
  if (fs::path(path).extension() == ".npy") {
    t = read_npy(path);
  } else {
    const TensorMap m = load_safetensors(path);
    if (m.count("embedding")) {
      t = m.at("embedding");
    } else {
      EVIT_CHECK(m.size() == 1, "'", path, "' holds ", m.size(), " tensors and none named \"embedding\"");
      t = m.begin()->second;
    }
  }
  if (t.dim() == 3) t = unsqueeze(t, 0);
  EVIT_CHECK(t.dim() == 4 && t.size(0) == 1 && t.size(1) == 256 && t.size(2) == 64 && t.size(3) == 64, "'", path,
             "' holds an embedding of shape ", t.desc(), "; expected [256, 64, 64] or [1, 256, 64, 64]");
  return t.to(DType::f32).contiguous();
}

void write_embedding(const std::string& path, const Tensor& embedding, const std::string& teacher,
                     const std::string& image_path, int64_t image_h, int64_t image_w) {
  Tensor e = embedding.dim() == 4 ? squeeze(embedding, 0) : embedding;
  EVIT_CHECK(e.dim() == 3 && e.size(0) == 256, "write_embedding: expected [256, h, w], got ", embedding.desc());
  save_safetensors(path, {{"embedding", e.to(kCPU).to(DType::f16).contiguous()}},
                   {{"teacher", teacher},
                    {"image", fs::path(image_path).filename().string()},
                    {"image_size", std::to_string(image_h) + "x" + std::to_string(image_w)}});
}

EmbedStats embed_images(zoo::SamViTEncoder& teacher, const std::string& teacher_name,
                        const std::vector<std::string>& images, const std::string& cache_dir,
                        const std::function<void(int64_t, int64_t)>& progress) {
  NoGradGuard no_grad;
  fs::create_directories(cache_dir);
  const Device device = teacher.parameters().at(0).device();
  EmbedStats stats;
  const int64_t total = static_cast<int64_t>(images.size());
  if (progress) progress(0, total);
  for (int64_t i = 0; i < total; ++i) {
    const std::string out = embedding_path(cache_dir, images[i]);
    if (fs::is_regular_file(out)) {
      ++stats.skipped;
    } else {
      const Image image = read_image(images[i]);
      const data::SamImage s = data::sam_preprocess(image, teacher.config().image_size);
      const Tensor e = teacher.forward(unsqueeze(s.input, 0).to(device));
      write_embedding(out, e, teacher_name, images[i], image.height, image.width);
      ++stats.written;
    }
    if (progress) progress(i + 1, total);
  }
  return stats;
}

}  // namespace evit::train
