#include "data/dataset.h"

#include <algorithm>
#include <cstring>
#include <cstdio>
#include <cmath>
#include <filesystem>

#include "data/image.h"
#include "ops/resize/imresize.h"
#include "ops/pointwise.h"
#include "ops/shape.h"

namespace fs = std::filesystem;

namespace evit::data {
namespace {

uint64_t splitmix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

bool has_suffix(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

bool is_image_file(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), ::tolower);
  return e == ".png" || e == ".jpg" || e == ".jpeg";
}

void require_dir(const std::string& dir, const std::string& what) {
  EVIT_CHECK(fs::is_directory(dir), what, ": folder '", dir, "' not found");
}

}  // namespace

namespace {

// The image with three channels, either depth: gray replicated, alpha dropped.
Image to_rgb(Image img) {
  if (img.channels == 3) return img;
  Image rgb(img.height, img.width, 3, img.bit_depth);
  const size_t bytes = static_cast<size_t>(img.bit_depth / 8);  // per sample
  const int64_t C = img.channels;
  for (int64_t i = 0; i < img.height * img.width; ++i)
    for (int64_t c = 0; c < 3; ++c)
      std::memcpy(&rgb.data[(i * 3 + c) * bytes], &img.data[(i * C + (C < 3 ? 0 : c)) * bytes], bytes);
  return rgb;
}

}  // namespace

Tensor load_rgb(const std::string& path) { return image_to_chw_float(to_rgb(read_image(path))); }

// A 16-bit file keeps its precision: load_rgb's floats.
Tensor load_rgb_u8(const std::string& path) {
  Image rgb = to_rgb(read_image(path));
  return rgb.bit_depth == 8 ? image_to_hwc_u8(rgb) : image_to_chw_float(rgb);
}

namespace {

// round() to the nearest integer, halves away from zero (MATLAB's uint8 conversion).
Tensor round_half_away(const Tensor& x) {
  Tensor c = x.contiguous();
  Tensor y = empty_like(c);
  const float* p = c.data_ptr<float>();
  float* q = y.data_ptr<float>();
  for (int64_t i = 0; i < c.numel(); ++i) q[i] = std::round(p[i]);
  return y;
}

}  // namespace

Generator sample_generator(uint64_t seed, int64_t epoch, int64_t index) {
  uint64_t h = splitmix(seed);
  h = splitmix(h ^ static_cast<uint64_t>(epoch));
  h = splitmix(h ^ static_cast<uint64_t>(index));
  return Generator(h);
}

Sample Dataset::get(int64_t index, Generator& rng) const {
  EVIT_CHECK(index >= 0 && index < size(), describe(), ": index ", index, " out of range [0, ", size(), ")");
  Sample s = load(index);
  apply_transforms(s, rng);
  return s;
}

std::vector<std::string> list_images(const std::string& dir) {
  std::vector<std::string> out;
  for (auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && is_image_file(e.path())) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// ---------------------------------------------------------------------------------- segmentation

LabelClasses label_image_to_classes(const Image& lab, const std::vector<uint8_t>& label_map, int max_label_id,
                                    const std::string& what) {
  EVIT_CHECK(label_map.size() == 256, what, ": the label map needs 256 entries, got ", label_map.size());
  EVIT_CHECK(lab.bit_depth == 8 && (lab.channels == 1 || lab.channels == 3), what,
             " must be an 8-bit gray (or RGB with equal channels) PNG, got ", lab.desc());
  LabelClasses out;
  out.classes = empty({lab.height, lab.width}, DType::i64);
  int64_t* p = out.classes.data_ptr<int64_t>();
  const uint8_t* q = lab.samples8();
  for (int64_t i = 0; i < lab.height * lab.width; ++i) {
    const uint8_t id = q[i * lab.channels];
    if (id > max_label_id) {
      if (out.out_of_range++ == 0) out.first_out_of_range = id;
    }
    p[i] = label_map[id];
  }
  return out;
}

SegmentationDataset::SegmentationDataset(std::string name, std::vector<std::pair<std::string, std::string>> files,
                                         std::vector<uint8_t> label_map, int64_t num_classes, int max_label_id)
    : name_(std::move(name)), files_(std::move(files)), label_map_(std::move(label_map)), num_classes_(num_classes),
      max_label_id_(max_label_id) {
  EVIT_CHECK(label_map_.size() == 256, name_, ": the label map needs 256 entries");
}

Sample SegmentationDataset::load(int64_t index) const {
  const auto& [img_path, label_path] = files_.at(index);
  Sample s;
  s.id = img_path;
  s.input = load_rgb(img_path);
  const Image lab = read_image(label_path);
  EVIT_CHECK(lab.height == s.input.size(1) && lab.width == s.input.size(2), name_, ": label '", label_path,
             "' is ", lab.height, "x", lab.width, " but image '", img_path, "' is ", s.input.size(1), "x",
             s.input.size(2));
  LabelClasses c = label_image_to_classes(lab, label_map_, max_label_id_, name_ + ": label '" + label_path + "'");
  if (c.out_of_range > 0) {
    out_of_range_pixels_ += c.out_of_range;
    if (!out_of_range_reported_.exchange(true))
      std::fprintf(stderr,
                   "warning: %s: label '%s' has %lld pixels with ids above %d (the first: %d), which are no ids of "
                   "this dataset; they are ignored. Further such labels are not reported.\n",
                   name_.c_str(), label_path.c_str(), (long long)c.out_of_range, max_label_id_, c.first_out_of_range);
  }
  s.target = c.classes;
  return s;
}

std::string SegmentationDataset::describe() const {
  return name_ + " (" + std::to_string(files_.size()) + " images, " + std::to_string(num_classes_) + " classes)";
}

const std::vector<std::string>& cityscapes_class_names() {
  static const std::vector<std::string> names = {
      "road",  "sidewalk", "building", "wall",  "fence", "pole",  "traffic light", "traffic sign", "vegetation", "terrain",
      "sky",   "person",   "rider",    "car",   "truck", "bus",   "train",         "motorcycle",   "bicycle"};
  return names;
}

std::vector<uint8_t> cityscapes_label_map() {
  std::vector<uint8_t> m(256, 255);
  const int ids[19] = {7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33};
  for (int t = 0; t < 19; ++t) m[ids[t]] = static_cast<uint8_t>(t);
  return m;
}

std::shared_ptr<SegmentationDataset> cityscapes(const std::string& root, const std::string& split) {
  const std::string img_root = root + "/leftImg8bit/" + split, lab_root = root + "/gtFine/" + split;
  require_dir(img_root, "cityscapes");
  require_dir(lab_root, "cityscapes");
  std::vector<std::pair<std::string, std::string>> files;
  std::vector<fs::path> cities;
  for (auto& e : fs::directory_iterator(img_root))
    if (e.is_directory()) cities.push_back(e.path());
  std::sort(cities.begin(), cities.end());
  const std::string suffix = "_leftImg8bit.png";
  for (auto& city : cities) {
    for (const std::string& img : list_images(city.string())) {
      std::string name = fs::path(img).filename().string();
      if (!has_suffix(name, suffix)) continue;
      std::string stem = name.substr(0, name.size() - suffix.size());
      std::string label = lab_root + "/" + city.filename().string() + "/" + stem + "_gtFine_labelIds.png";
      EVIT_CHECK(fs::exists(label), "cityscapes: image '", img, "' has no label '", label, "'");
      files.emplace_back(img, label);
    }
  }
  EVIT_CHECK(!files.empty(), "cityscapes: no *_leftImg8bit.png images under '", img_root, "'");
  return std::make_shared<SegmentationDataset>("cityscapes " + split, std::move(files), cityscapes_label_map(), 19,
                                               33);  // labelIds run 0..33
}

std::shared_ptr<SegmentationDataset> ade20k(const std::string& root, const std::string& split) {
  std::string base = fs::is_directory(root + "/ADEChallengeData2016") ? root + "/ADEChallengeData2016" : root;
  std::string sub = split == "train" ? "training" : split == "val" ? "validation" : split;
  const std::string img_dir = base + "/images/" + sub, lab_dir = base + "/annotations/" + sub;
  require_dir(img_dir, "ade20k");
  require_dir(lab_dir, "ade20k");
  std::vector<std::pair<std::string, std::string>> files;
  for (const std::string& img : list_images(img_dir)) {
    std::string label = lab_dir + "/" + fs::path(img).stem().string() + ".png";
    EVIT_CHECK(fs::exists(label), "ade20k: image '", img, "' has no label '", label, "'");
    files.emplace_back(img, label);
  }
  EVIT_CHECK(!files.empty(), "ade20k: no images under '", img_dir, "'");
  // Label 0 is "other" (ignored); classes 1..150 become 0..149.
  std::vector<uint8_t> m(256, 255);
  for (int v = 1; v <= 150; ++v) m[v] = static_cast<uint8_t>(v - 1);
  return std::make_shared<SegmentationDataset>("ade20k " + split, std::move(files), m, 150, 150);
}

// -------------------------------------------------------------------------------- classification

ImageFolderDataset::ImageFolderDataset(const std::string& root, const std::string& split) : dir_(root + "/" + split) {
  require_dir(dir_, "imagenet");
  std::vector<std::string> classes;
  for (auto& e : fs::directory_iterator(dir_))
    if (e.is_directory()) classes.push_back(e.path().filename().string());
  std::sort(classes.begin(), classes.end());
  EVIT_CHECK(!classes.empty(), "imagenet: no class folders under '", dir_, "'");
  classes_ = classes;
  for (size_t c = 0; c < classes.size(); ++c)
    for (const std::string& f : list_images(dir_ + "/" + classes[c])) files_.emplace_back(f, static_cast<int64_t>(c));
  EVIT_CHECK(!files_.empty(), "imagenet: no images under '", dir_, "'");
}

Sample ImageFolderDataset::load(int64_t index) const {
  Sample s;
  s.id = files_.at(index).first;
  s.input = eight_bit_ ? load_rgb_u8(s.id) : load_rgb(s.id);
  s.target = full({}, static_cast<double>(files_[index].second), DType::i64);
  return s;
}

std::string ImageFolderDataset::describe() const {
  return "image folder '" + dir_ + "' (" + std::to_string(files_.size()) + " images, " +
         std::to_string(classes_.size()) + " classes)";
}

// ---------------------------------------------------------------------------- super-resolution

SRDataset::SRDataset(const std::string& hr_dir, int64_t scale, const std::string& lr_dir)
    : hr_dir_(hr_dir), lr_dir_(lr_dir), scale_(scale) {
  EVIT_CHECK(scale >= 2 && scale <= 4, "super-resolution data: scale must be 2, 3 or 4, got ", scale);
  require_dir(hr_dir, "super-resolution data");
  if (!lr_dir.empty()) require_dir(lr_dir, "super-resolution data");
  hr_files_ = list_images(hr_dir);
  EVIT_CHECK(!hr_files_.empty(), "super-resolution data: no PNG/JPEG images in '", hr_dir, "'");
}

Sample SRDataset::load(int64_t index) const {
  Sample s;
  s.id = hr_files_.at(index);
  Tensor hr = load_rgb(s.id);
  // Crop to a multiple of the scale (the "modcrop" every SR benchmark applies).
  const int64_t h = hr.size(1) / scale_ * scale_, w = hr.size(2) / scale_ * scale_;
  EVIT_CHECK(h > 0 && w > 0, "super-resolution data: '", s.id, "' is smaller than the scale ", scale_);
  hr = slice(slice(hr, 1, 0, h), 2, 0, w).contiguous();
  if (lr_dir_.empty()) {
    // MATLAB resizes the uint8 image and rounds to uint8: quantise like the published LR sets.
    Tensor lr = imresize(hr, 1.0 / static_cast<double>(scale_));
    s.input = div(round_half_away(mul(clamp(lr, 0.0, 1.0), 255.0)), 255.0);
  } else {
    std::string stem = fs::path(s.id).stem().string();
    std::string a = lr_dir_ + "/" + stem + "x" + std::to_string(scale_) + ".png", b = lr_dir_ + "/" + stem + ".png";
    std::string lr = fs::exists(a) ? a : b;
    EVIT_CHECK(fs::exists(lr), "super-resolution data: no LR image for '", s.id, "' in '", lr_dir_, "' (tried ",
               fs::path(a).filename().string(), " and ", fs::path(b).filename().string(), ")");
    s.input = load_rgb(lr);
    EVIT_CHECK(s.input.size(1) * scale_ == h && s.input.size(2) * scale_ == w, "super-resolution data: LR '", lr,
               "' is ", s.input.size(1), "x", s.input.size(2), ", expected ", h / scale_, "x", w / scale_);
  }
  s.target = hr;
  return s;
}

std::string SRDataset::describe() const {
  return "super-resolution x" + std::to_string(scale_) + " '" + hr_dir_ + "' (" + std::to_string(hr_files_.size()) +
         " images" + (lr_dir_.empty() ? ", LR by bicubic imresize)" : ", LR from '" + lr_dir_ + "')");
}

Subset::Subset(std::shared_ptr<Dataset> base, int64_t limit)
    : base_(std::move(base)), n_(std::min(limit, base_->size())) {}

Sample Subset::get(int64_t index, Generator& rng) const {
  EVIT_CHECK(index >= 0 && index < n_, describe(), ": index ", index, " out of range [0, ", n_, ")");
  Sample s = base_->get(index, rng);
  apply_transforms(s, rng);
  return s;
}

std::string Subset::describe() const { return base_->describe() + ", first " + std::to_string(n_); }

std::string sr_hr_folder(const std::string& root, const std::string& split) {
  const std::string div2k = split == "train" ? "DIV2K_train_HR" : "DIV2K_valid_HR";
  for (const std::string& name : {split, div2k, split + "/HR"})
    if (fs::is_directory(root + "/" + name)) return root + "/" + name;
  EVIT_THROW("super-resolution data: '", root, "' has no ", split, " folder of HR images (", split, "/, ", div2k, "/ or ", split,
             "/HR/)");
}

}  // namespace evit::data
