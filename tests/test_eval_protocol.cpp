// The official evaluation protocols' pixels (tools/golden/gen_eval_protocol.py, OpenCV, Pillow and
// torchvision from PyPI): the 8-bit resizers against the libraries on random images, the size
// and crop rules, and the model inputs of real ADE20K, Cityscapes and ImageNet samples.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <tuple>

#include "data/dataset.h"
#include "data/eval_transforms.h"
#include "data/image.h"
#include "data/resize_u8.h"
#include "core/safetensors.h"
#include "support/test_util.h"
#include "train/config.h"
#include "train/evaluator.h"
#include "zoo/models.h"

using namespace evit;
namespace fs = std::filesystem;

namespace {

const char* kFamily = "eval_protocol";

Tensor g(const std::string& key) { return test::golden_tensor(kFamily, key); }
bool has(const std::string& key) { return test::golden(kFamily).count(key) > 0; }

// A u8 tensor [H,W,C] or [H,W] as an Image.
Image image_of(const Tensor& t) {
  const int64_t c = t.dim() == 3 ? t.size(2) : 1;
  Image img(t.size(0), t.size(1), c);
  const auto v = t.to_vector<uint8_t>();
  std::copy(v.begin(), v.end(), img.data.begin());
  return img;
}

struct Diff {
  int max = 0;
  int64_t differing = 0, total = 0;
};

// Compares `ours` with `want`, the reference sampled every `stride` pixels (stride 1: all).
Diff compare(const Image& ours, const Tensor& want, int64_t stride = 1) {
  const Image w = image_of(want);
  Diff d;
  REQUIRE(w.channels == ours.channels);
  REQUIRE(w.height == (ours.height + stride - 1) / stride);
  REQUIRE(w.width == (ours.width + stride - 1) / stride);
  for (int64_t y = 0; y < w.height; ++y)
    for (int64_t x = 0; x < w.width; ++x)
      for (int64_t c = 0; c < w.channels; ++c) {
        const int a = ours.data[((y * stride) * ours.width + x * stride) * ours.channels + c];
        const int b = w.data[(y * w.width + x) * w.channels + c];
        d.max = std::max(d.max, std::abs(a - b));
        d.differing += a != b;
        ++d.total;
      }
  return d;
}

std::string name_of(const std::string& key) {
  const auto v = g(key).to_vector<uint8_t>();
  return std::string(v.begin(), v.end());
}

std::pair<int64_t, int64_t> size_of(const std::string& key) {
  const auto v = g(key).to_vector<int64_t>();
  return {v[0], v[1]};
}

}  // namespace

TEST_CASE("the 8-bit bicubic resizes equal OpenCV's and Pillow's", "[evalproto]") {
  // OpenCV: any sizes. Pillow: torchvision-style resizes (aspect kept), the ImageNet protocol's use.
  int cases = 0;
  for (int n = 0; has("resize_" + std::to_string(n) + ".source"); ++n, ++cases) {
    const std::string c = "resize_" + std::to_string(n);
    const Image src = image_of(g(c + ".source"));
    const Tensor cv_exact = g(c + ".opencv_exact");
    const int64_t oh = cv_exact.size(0), ow = cv_exact.size(1);
    INFO(c << ": " << src.height << "x" << src.width << "x" << src.channels << " -> " << oh << "x" << ow);
    const Image cv = data::resize_bicubic_opencv(src, oh, ow);
    // OpenCV's own implementation, bit for bit.
    REQUIRE(compare(cv, cv_exact).max == 0);
    // The default build routes the same call through Intel IPP, whose rounding differs by at most
    // one level on a few percent of the values.
    const Diff ipp = compare(cv, g(c + ".opencv_ipp"));
    REQUIRE(ipp.max <= 1);
    REQUIRE(ipp.differing <= ipp.total / 10);
  }
  REQUIRE(cases >= 8);
  int pil_cases = 0;
  for (int n = 0; has("pil_" + std::to_string(n) + ".source"); ++n, ++pil_cases) {
    const std::string c = "pil_" + std::to_string(n);
    const Tensor want = g(c + ".output");
    INFO(c);
    REQUIRE(compare(data::resize_bicubic_pil(image_of(g(c + ".source")), want.size(0), want.size(1)), want).max == 0);
  }
  REQUIRE(pil_cases >= 8);
}

TEST_CASE("evaluation sizes and crops follow the official scripts' rounding", "[evalproto]") {
  using data::ade20k_eval_size;
  REQUIRE(ade20k_eval_size(512, 683, 512) == std::pair<int64_t, int64_t>{512, 704});
  REQUIRE(ade20k_eval_size(364, 500, 512) == std::pair<int64_t, int64_t>{512, 704});
  REQUIRE(ade20k_eval_size(600, 400, 512) == std::pair<int64_t, int64_t>{768, 512});
  REQUIRE(ade20k_eval_size(300, 300, 512) == std::pair<int64_t, int64_t>{512, 512});
  // torchvision Resize(236): the long side is truncated, the short side gets the size.
  REQUIRE(data::torchvision_resize_size(375, 500, 236) == std::pair<int64_t, int64_t>{236, 314});
  REQUIRE(data::torchvision_resize_size(500, 333, 236) == std::pair<int64_t, int64_t>{354, 236});
  // CenterCrop rounds halves to even, as Python's round().
  REQUIRE(data::center_crop_offsets(236, 314, 224) == std::pair<int64_t, int64_t>{6, 45});
  REQUIRE(data::center_crop_offsets(229, 227, 224) == std::pair<int64_t, int64_t>{2, 2});
  REQUIRE(data::center_crop_offsets(231, 233, 224) == std::pair<int64_t, int64_t>{4, 4});
  REQUIRE_THROWS_WITH(data::resize_bicubic_pil(Image(4, 4, 3), 0, 3), Catch::Contains("output size must be positive"));
}

TEST_CASE("the protocols give the official model inputs on real samples", "[evalproto]") {
  const std::string shared = test::shared_data_dir();
  if (shared.empty()) return test::skip(test::no_shared_data("the real-sample protocol checks"));
  const int64_t stride = 4;
  Generator unused(0);
  // Our decode must equal Pillow's (same libjpeg-turbo / libpng output), so the transforms can be
  // compared pixel for pixel.
  auto run = [&](const std::string& c, const std::string& path, const data::Transform& tf, int max_level) {
    INFO(c << ": " << path);
    data::Sample s{data::load_rgb(path), Tensor(), path, Tensor()};
    REQUIRE(size_of(c + ".source_size") == std::pair<int64_t, int64_t>{s.input.size(1), s.input.size(2)});
    const Diff decode = compare(chw_float_to_image(s.input), g(c + ".source"), stride);
    REQUIRE(decode.max == 0);
    tf(s, unused);
    REQUIRE(size_of(c + ".output_size") == std::pair<int64_t, int64_t>{s.input.size(1), s.input.size(2)});
    const Diff d = compare(chw_float_to_image(s.input), g(c + ".output"), stride);
    INFO("max " << d.max << ", " << d.differing << " of " << d.total << " values differ");
    REQUIRE(d.max <= max_level);
    return d;
  };
  // OpenCV with IPP (the official scripts' default): within one level.
  for (int k = 0; k < 3; ++k) {
    const std::string c = "ade20k_" + std::to_string(k);
    run(c, shared + "/ade20k_samples/ADEChallengeData2016/images/validation/" + name_of(c + ".name"),
        data::ade20k_eval_resize(512), 1);
  }
  std::string frame;
  for (auto& e : fs::recursive_directory_iterator(shared + "/cityscapes_samples/leftImg8bit/val"))
    if (e.path().string().ends_with("_leftImg8bit.png")) frame = e.path().string();
  run("cityscapes", frame, data::cityscapes_eval_resize(1024), 1);
  // Pillow: exact.
  int imagenet = 0;
  for (; has("imagenet_" + std::to_string(imagenet) + ".output"); ++imagenet) {
    const std::string c = "imagenet_" + std::to_string(imagenet);
    run(c, shared + "/" + name_of(c + ".name"), data::imagenet_eval_crop(224, 0.95), 0);
  }
  REQUIRE(imagenet >= 10);
}

TEST_CASE("evit's evaluation gives the official evaluation loop's mIoU on the same weights", "[evalproto]") {
  // tools/reference/eval_protocol_e2e.py: the official loop (OpenCV, Pillow, PyTorch) on the
  // shared ADE20K and Cityscapes samples with weights evit trained briefly (stored in f16).
  const std::string shared = test::shared_data_dir();
  if (shared.empty()) return test::skip(test::no_shared_data("the end-to-end protocol check"));
  const std::string golden_dir = EVIT_GOLDEN_DIR;
  const nlohmann::json want = nlohmann::json::parse(read_file(golden_dir + "/eval_e2e.json"));
  for (const auto& [dataset, root, classes] :
       {std::tuple<std::string, std::string, int64_t>{"ade20k", "/ade20k_samples", 150}, {"cityscapes", "/cityscapes_samples", 19}}) {
    INFO(dataset);
    const nlohmann::json c = {{"task", "segmentation"},
                              {"model", {{"name", "efficientvit-seg-b0-cityscapes"}, {"num_classes", classes}}},
                              {"data", {{"root", shared + root}, {"dataset", dataset}, {"crop", dataset == "ade20k" ? 512 : 1024}}},
                              {"optimizer", {{"lr", 1e-3}}},
                              {"train", {{"steps", 1}}},
                              {"output_dir", "unused"}};
    const train::RunConfig rc =
        train::parse_run_config(train::load_config_text(c.dump(), "e2e config", train::training_config_schema()));
    const train::ValidationData val = train::validation_data(rc);
    auto model = zoo::create_model(rc.model.name, classes);
    model->load(golden_dir + "/" + want.at(dataset).at("weights").get<std::string>(), true);
    const train::EvalReport r = train::Evaluator(train::eval_spec(rc, classes)).run(*model, *val.dataset);
    const double official = want.at(dataset).at("miou").get<double>();
    const double exact = want.at(dataset).at("miou_opencv_without_ipp").get<double>();
    const double ours = r.metrics.at("val/mIoU");
    INFO("evit " << ours << ", official loop " << official << " (OpenCV without IPP: " << exact << ")");
    REQUIRE(official > 1.0);  // trained weights: a score that can tell protocols apart
    // The same pixels as OpenCV's own code: the same number.
    REQUIRE(std::abs(ours - exact) <= 0.01);
    // The IPP build moves a few percent of the input values by one level, which moves a few
    // boundary pixels of the prediction.
    REQUIRE(std::abs(ours - official) <= 0.05);
  }
}

TEST_CASE("evit's evaluation gives the official evaluation loop's top-1 and top-5 on the same weights", "[evalproto]") {
  // tools/reference/eval_protocol_e2e.py: torchvision's ImageFolder, Resize(ceil(224 / 0.95),
  // bicubic), CenterCrop(224), ToTensor, Normalize and a top-k count, with efficientvit-b0 weights
  // (a 100-class head) evit trained briefly on the 100 shared ImageNet samples, stored in f16.
  const std::string shared = test::shared_data_dir();
  if (shared.empty()) return test::skip(test::no_shared_data("the end-to-end ImageNet protocol check"));
  const std::string golden_dir = EVIT_GOLDEN_DIR;
  const nlohmann::json want = nlohmann::json::parse(read_file(golden_dir + "/eval_e2e.json")).at("imagenet");
  const nlohmann::json c = {{"task", "classification"},
                            {"model", {{"name", "efficientvit-b0"}}},
                            {"data", {{"root", shared + "/imagenet_samples"}, {"dataset", "imagenet"}, {"crop", 224}}},
                            {"optimizer", {{"lr", 1e-3}}},
                            {"train", {{"steps", 1}}},
                            {"output_dir", "unused"}};
  const train::RunConfig rc =
      train::parse_run_config(train::load_config_text(c.dump(), "e2e config", train::training_config_schema()));
  const train::ValidationData val = train::validation_data(rc);
  REQUIRE(val.num_classes == 100);
  auto model = zoo::create_model(rc.model.name, val.num_classes);
  model->load(golden_dir + "/" + want.at("weights").get<std::string>(), true);
  const train::EvalReport r = train::Evaluator(train::eval_spec(rc, val.num_classes)).run(*model, *val.dataset);
  REQUIRE(r.samples == want.at("images").get<int64_t>());
  const double top1 = r.metrics.at("val/top1"), top5 = r.metrics.at("val/top5");  // percent
  INFO("evit top-1 " << top1 << " top-5 " << top5 << "; official loop " << want.at("top1") << " / " << want.at("top5"));
  REQUIRE(want.at("top1").get<double>() > 10.0);  // trained weights: predictions far from chance (1%)
  REQUIRE(std::abs(top1 - want.at("top1").get<double>()) <= 0.01);
  REQUIRE(std::abs(top5 - want.at("top5").get<double>()) <= 0.01);
}
