// `evit make-demo-data OUT [--photos DIR]`: the data of the README demo. Writes a procedurally
// generated street-scene dataset in the Cityscapes layout (OUT/cityscapes, read by the real
// Cityscapes loader) and, given a folder of photographs, splits them into OUT/photos/{train,val}
// for the super-resolution demo (the held-out photos are listed in --val). For the SAM distillation
// demo it fills OUT/sam/{train,val} with links to the images of --sam-images (the street scenes
// when none is given) and writes OUT/sam/teacher.safetensors, a seeded sam-vit-demo teacher
// (zoo/sam_vit.h): no released weights exist on these machines, so the demo distils from a
// randomly initialised small teacher to show the machinery.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "data/dataset.h"
#include "data/image.h"
#include "data/synthetic.h"
#include "core/generator.h"
#include "core/safetensors.h"
#include "ops/shape.h"
#include "tools/commands.h"
#include "zoo/sam_vit.h"

namespace fs = std::filesystem;

namespace evit::cli {
namespace {
struct DemoDataOptions {
  std::string out, photos;
  std::vector<std::string> val = {"astronaut", "coffee"};
  std::vector<std::string> names;  // empty: every colour photo in the folder
  int64_t train = 64, val_count = 8, height = 256, width = 512;
  std::string sam_images;  // "" = the street scenes
  int64_t sam_val = 8;
};

// OUT/sam: the last `val` images held out, links to the images (copies where links fail), and the
// demo teacher's weights under the released checkpoints' "image_encoder." keys.
void write_sam_demo(const std::string& out, const std::vector<std::string>& images, int64_t val) {
  const std::string dir = out + "/sam";
  fs::remove_all(dir);
  fs::create_directories(dir + "/train");
  fs::create_directories(dir + "/val");
  EVIT_CHECK(static_cast<int64_t>(images.size()) > val, "make-demo-data: ", images.size(),
             " images for the SAM demo; need more than the ", val, " held out");
  for (size_t i = 0; i < images.size(); ++i) {
    const bool held_out = static_cast<int64_t>(i) >= static_cast<int64_t>(images.size()) - val;
    const fs::path to = fs::path(dir) / (held_out ? "val" : "train") / fs::path(images[i]).filename();
    std::error_code ec;
    fs::create_symlink(fs::absolute(images[i]), to, ec);
    if (ec) fs::copy_file(images[i], to);
  }
  manual_seed(2024);
  zoo::SamViTEncoder teacher(zoo::sam_vit_config("sam-vit-demo"));
  TensorMap weights;
  for (const auto& [k, t] : teacher.state_dict()) weights["image_encoder." + k] = t;
  save_safetensors(dir + "/teacher.safetensors", weights, {{"model", "sam-vit-demo (seeded random initialisation)"}});
  std::printf("wrote %lld training and %lld held-out images for the SAM demo and its sam-vit-demo teacher to %s\n",
              (long long)(images.size() - val), (long long)val, dir.c_str());
}
}  // namespace

Runner add_demo_data_command(CLI::App& app) {
  auto o = std::make_shared<DemoDataOptions>();
  auto* cmd = app.add_subcommand("make-demo-data", "Write the demo datasets (synthetic Cityscapes layout, photo splits)");
  cmd->add_option("out", o->out, "Output folder")->required();
  cmd->add_option("--photos", o->photos, "Folder of photographs for the super-resolution demo");
  cmd->add_option("--val", o->val, "Photo names (without extension) held out for evaluation");
  cmd->add_option("--names", o->names, "Use only these photos (names without extension)");
  cmd->add_option("--train-frames", o->train, "Synthetic training frames")->capture_default_str();
  cmd->add_option("--val-frames", o->val_count, "Synthetic validation frames")->capture_default_str();
  cmd->add_option("--sam-images", o->sam_images, "Folder of images for the SAM distillation demo (default: the street scenes)");
  cmd->add_option("--sam-val", o->sam_val, "SAM demo images held out for evaluation")->capture_default_str();
  return [o] {
    const std::string cs = o->out + "/cityscapes";
    fs::remove_all(cs);
    data::write_synthetic_cityscapes(cs, o->train, o->val_count, o->height, o->width, 2024);
    std::printf("wrote %lld + %lld synthetic street scenes (%lldx%lld) to %s\n", (long long)o->train,
                (long long)o->val_count, (long long)o->width, (long long)o->height, cs.c_str());
    std::vector<std::string> sam_images;
    if (!o->sam_images.empty()) {
      sam_images = data::list_images(o->sam_images);
    } else {
      for (const char* split : {"train", "val"})
        for (const auto& city : fs::directory_iterator(cs + "/leftImg8bit/" + split))
          for (const std::string& f : data::list_images(city.path().string())) sam_images.push_back(f);
    }
    write_sam_demo(o->out, sam_images, o->sam_val);
    if (o->photos.empty()) return 0;
    const std::string ph = o->out + "/photos";
    fs::remove_all(ph);
    fs::create_directories(ph + "/train");
    fs::create_directories(ph + "/val");
    int n_train = 0, n_val = 0;
    for (const std::string& f : data::list_images(o->photos)) {
      const std::string name = fs::path(f).stem().string();
      if (!o->names.empty() && std::find(o->names.begin(), o->names.end(), name) == o->names.end()) continue;
      Image img;
      try {
        img = read_image(f);
      } catch (const Error& e) {  // the package ships a deliberately truncated JPEG, for example
        std::printf("skipping %s: %s\n", f.c_str(), e.what());
        continue;
      }
      if (img.channels < 3 || img.height < 128 || img.width < 128) continue;  // colour photographs only
      const bool val = std::find(o->val.begin(), o->val.end(), name) != o->val.end();
      Tensor rgb = slice(image_to_chw_float(img), 0, 0, 3).contiguous();
      encode_png(ph + (val ? "/val/" : "/train/") + name + ".png", chw_float_to_image(rgb));
      (val ? n_val : n_train)++;
    }
    EVIT_CHECK(n_train > 0 && n_val > 0, "make-demo-data: '", o->photos, "' gave ", n_train, " training and ", n_val,
               " held-out colour photos; need at least one of each");
    std::printf("wrote %d training and %d held-out photos to %s\n", n_train, n_val, ph.c_str());
    return 0;
  };
}

}  // namespace evit::cli
