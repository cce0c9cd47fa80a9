// Teacher embeddings for SAM encoder distillation: the SAM ViT teacher loaded from a released
// checkpoint, and a cache of one embedding file per image.
//
// Cache layout: CACHE/<image id>.safetensors, where the image id is the image file's name without
// its extension; one tensor "embedding" [256, 64, 64] in f16 (2 MiB instead of 4), with metadata
// "teacher", "image" (the source file) and "image_size" ("HxW"). Files are written atomically, so
// an interrupted `evit embed` leaves only complete files and a rerun skips them.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "zoo/sam_vit.h"

namespace evit::train {

// The teacher encoder `name` (sam-vit-h, sam-vit-l, sam-vit-b) with the weights of `path`: a
// released Segment Anything checkpoint converted to safetensors (keys "image_encoder.*"; the
// prompt encoder and mask decoder keys are ignored) or a file of the encoder's keys alone.
std::shared_ptr<zoo::SamViTEncoder> load_sam_teacher(const std::string& name, const std::string& path);
// The same for an encoder of any configuration (`name` only names it in errors).
std::shared_ptr<zoo::SamViTEncoder> load_sam_teacher(const zoo::SamViTConfig& config, const std::string& name,
                                                     const std::string& path);

// The cache file of an image.
std::string embedding_path(const std::string& cache_dir, const std::string& image_path);

// Reads an embedding as f32 [1, 256, 64, 64]: evit's cache files, any safetensors file holding one
// tensor (or one named "embedding"), or a NumPy .npy file; [256, 64, 64] and [1, 256, 64, 64]
// are accepted. Anything else is an error naming the file and the shape found.
Tensor read_embedding(const std::string& path);
void write_embedding(const std::string& path, const Tensor& embedding, const std::string& teacher,
                     const std::string& image_path, int64_t image_h, int64_t image_w);

struct EmbedStats {
  int64_t written = 0, skipped = 0;
};

// Embeds every image (PNG or JPEG paths) that has no cache file yet; `progress(done, total)` is
// called after each image.
EmbedStats embed_images(zoo::SamViTEncoder& teacher, const std::string& teacher_name,
                        const std::vector<std::string>& images, const std::string& cache_dir,
                        const std::function<void(int64_t, int64_t)>& progress = nullptr);

}  // namespace evit::train
