// SAM's predictor against the reference pipeline (tools/golden/gen_sam_predictor.py: torchvision's
// transform of EfficientViT-SAM, segment-anything's prompt encoder and mask decoder with the parity
// fill, the official predictor's prompt scaling and mask post-processing), and its errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "data/image.h"
#include "data/sam_transforms.h"
#include "ops/ops.h"
#include "support/test_util.h"
#include "train/sam_predictor.h"
#include "zoo/sam.h"

using namespace evit;

namespace {

const char* kFamily = "sam_predictor";
Tensor g(const std::string& key) { return test::golden_tensor(kFamily, key); }
bool has(const std::string& key) { return test::golden(kFamily).count(key) > 0; }

// Every `step`-th pixel of [C, H, W] in both directions.
Tensor sampled(const Tensor& chw, int64_t step) {
  return slice(slice(chw, 1, 0, chw.size(1), step), 2, 0, chw.size(2), step).contiguous();
}

double total(const Tensor& t) { return sum(t.to(DType::f64)).item<double>(); }

Image image_of(const Tensor& hwc) {
  Image im(hwc.size(0), hwc.size(1), hwc.size(2));
  const auto v = hwc.contiguous().to_vector<uint8_t>();
  std::copy(v.begin(), v.end(), im.data.begin());
  return im;
}

void check_preprocess_case(int n, const Image& image) {
  const std::string c = "pre_" + std::to_string(n);
  INFO(c << " (" << image.height << "x" << image.width << ")");
  const int64_t size = g(c + ".size").to_vector<int64_t>()[0];
  const data::SamImage s = data::sam_preprocess(image, size);
  REQUIRE(s.input.sizes() == Shape{3, size, size});
  EVIT_REQUIRE_CLOSE(sampled(s.input, size / 64), g(c + ".sampled"), 0, 2e-6);
  CHECK(std::abs(total(s.input) - g(c + ".sum").item<double>()) < 1e-6 * 3 * size * size);
}

}  // namespace

TEST_CASE("SAM preprocessing equals EfficientViT-SAM's transform on generated images", "[sam]") {
  int cases = 0;
  for (int n = 0; has("pre_" + std::to_string(n) + ".size"); ++n) {
    if (!has("pre_" + std::to_string(n) + ".image")) continue;  // a shared COCO image: next test
    const Tensor hwc = g("pre_" + std::to_string(n) + ".image");
    Image image = image_of(hwc);
    // The gray case is stored as RGB with equal channels; hand it over as one channel, as decoded.
    bool gray = true;
    for (int64_t i = 0; i < image.height * image.width && gray; ++i)
      gray = image.data[i * 3] == image.data[i * 3 + 1] && image.data[i * 3] == image.data[i * 3 + 2];
    if (gray) {
      Image one(image.height, image.width, 1);
      for (int64_t i = 0; i < image.height * image.width; ++i) one.data[i] = image.data[i * 3];
      image = one;
    }
    check_preprocess_case(n, image);
    ++cases;
  }
  CHECK(cases >= 6);
  CHECK(data::sam_resize_size(427, 640, 1024) == std::pair<int64_t, int64_t>{683, 1024});
  CHECK(data::sam_resize_size(500, 333, 512) == std::pair<int64_t, int64_t>{512, 341});
}

TEST_CASE("SAM preprocessing equals EfficientViT-SAM's transform on shared COCO images", "[sam]") {
  const std::string shared = test::shared_data_dir();
  if (shared.empty()) return test::skip(test::no_shared_data("the SAM preprocessing check on COCO images"));
  int cases = 0;
  for (int n = 0; has("pre_" + std::to_string(n) + ".size"); ++n) {
    const std::string key = "pre_" + std::to_string(n) + ".coco_file";
    if (!has(key)) continue;
    const auto bytes = g(key).to_vector<uint8_t>();
    const std::string file(bytes.begin(), bytes.end());
    check_preprocess_case(n, read_image(shared + "/coco_val2017_samples/val2017/" + file));
    ++cases;
  }
  CHECK(cases >= 2);
}

TEST_CASE("SAM predictor masks at the original size equal the reference predictor's", "[sam]") {
  auto model = zoo::make_efficientvit_sam("l0");
  test::fill_deterministic(*model);
  model->eval();
  train::SamPredictor predictor(model);
  int cases = 0;
  for (int n = 0; has("pred_" + std::to_string(n) + ".iou"); ++n, ++cases) {
    const std::string c = "pred_" + std::to_string(n);
    INFO(c);
    const auto original = g(c + ".original").to_vector<int64_t>();
    predictor.set_embedding(test::sine_input({1, 256, 64, 64}), original[0], original[1]);
    train::SamPrompt prompt;
    const auto xy = g(c + ".points").to_vector<double>();
    const auto labels = g(c + ".labels").to_vector<int64_t>();
    for (size_t i = 0; i < labels.size(); ++i)
      prompt.points.push_back({static_cast<float>(xy[2 * i]), static_cast<float>(xy[2 * i + 1]), static_cast<int>(labels[i])});
    const auto box = g(c + ".box").to_vector<double>();
    if (box.size() == 4)
      prompt.box = std::array<float, 4>{static_cast<float>(box[0]), static_cast<float>(box[1]), static_cast<float>(box[2]),
                                        static_cast<float>(box[3])};
    const bool multimask = g(c + ".multimask").to_vector<int64_t>()[0] != 0;
    const train::SamPrediction p = predictor.predict(prompt, multimask);
    const int64_t k = multimask ? 3 : 1;
    REQUIRE(p.logits().sizes() == Shape{k, original[0], original[1]});
    REQUIRE(p.low_res.sizes() == Shape{k, 256, 256});
    EVIT_REQUIRE_CLOSE(p.iou, g(c + ".iou"), 1e-4, 1e-5);
    EVIT_REQUIRE_CLOSE(sampled(p.low_res, 4), g(c + ".low_res_sampled"), 1e-4, 1e-4);
    EVIT_REQUIRE_CLOSE(sampled(p.logits(), 8), g(c + ".sampled"), 1e-4, 1e-4);
    const auto sums = g(c + ".sum").to_vector<double>();
    const auto positive = g(c + ".positive").to_vector<int64_t>();
    for (int64_t j = 0; j < k; ++j) {
      const Tensor logits = p.logits(j);
      const double abs_total = sum(abs(logits.to(DType::f64))).item<double>();
      CHECK(std::abs(total(logits) - sums[j]) <= 1e-4 * abs_total);  // the golden-row convention
      // The mask is logit > 0. Pixels whose logit is within rounding of 0 may fall either way (the
      // rounding differs with the instruction set the GEMMs run on), so the reference's count must
      // lie between the pixels clearly on and those not clearly off, by the relative tolerance of the
      // sampled logits above.
      const auto mask = p.mask(j);
      const auto values = logits.to(DType::f64).contiguous().to_vector<double>();
      REQUIRE(mask.size() == values.size());
      double peak = 0;
      for (double v : values) peak = std::max(peak, std::abs(v));
      const double near_zero = 1e-4 * peak;
      int64_t clearly_on = 0, not_clearly_off = 0, mask_errors = 0;
      for (size_t i = 0; i < values.size(); ++i) {
        mask_errors += mask[i] != (values[i] > 0 ? 1 : 0);
        clearly_on += values[i] > near_zero;
        not_clearly_off += values[i] > -near_zero;
      }
      INFO("peak logit " << peak << ", clearly on " << clearly_on << ", not clearly off " << not_clearly_off
                         << ", reference " << positive[j]);
      CHECK(mask_errors == 0);
      CHECK(clearly_on <= positive[j]);
      CHECK(positive[j] <= not_clearly_off);
      CHECK(not_clearly_off - clearly_on <= static_cast<int64_t>(values.size()) / 1000);  // a thin band
    }
  }
  CHECK(cases >= 5);
}

TEST_CASE("SAM predictor batches prompt sets and refuses bad prompts", "[sam]") {
  auto model = zoo::make_efficientvit_sam("l0");
  test::fill_deterministic(*model);
  model->eval();
  train::SamPredictor predictor(model);
  CHECK_THROWS_WITH(predictor.predict({{}, std::array<float, 4>{0, 0, 5, 5}}, true),
                    Catch::Contains("set an image"));
  predictor.set_embedding(test::sine_input({1, 256, 64, 64}), 300, 400);
  const std::vector<train::SamPrompt> prompts = {
      {{}, std::array<float, 4>{10, 20, 200, 250}},
      {{{50, 60, 1}}, std::nullopt},
      {{}, std::array<float, 4>{100, 30, 390, 290}},
      {{{50, 60, 1}, {300, 200, 0}}, std::array<float, 4>{40, 40, 350, 280}},
  };
  const auto batch = predictor.predict_batch(prompts, true);
  REQUIRE(batch.size() == prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    INFO("prompt set " << i);
    const auto one = predictor.predict(prompts[i], true);
    EVIT_REQUIRE_CLOSE(batch[i].logits(), one.logits(), 1e-5, 1e-5);
    EVIT_REQUIRE_CLOSE(batch[i].iou, one.iou, 1e-5, 1e-6);
  }
  CHECK_THROWS_WITH(predictor.predict({}, true), Catch::Contains("neither points nor a box"));
  CHECK_THROWS_WITH(predictor.predict({{{5, 5, 2}}, std::nullopt}, true), Catch::Contains("label 2"));
  CHECK_THROWS_WITH(predictor.set_embedding(zeros({1, 256, 32, 32}), 10, 10), Catch::Contains("[1, 256, 64, 64]"));
}

TEST_CASE("evit predict with SAM prompts writes the best mask and an overlay with the prompts drawn", "[sam][cli]") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "evit_test_sam_predict";
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto model = zoo::make_efficientvit_sam("l0");
  test::fill_deterministic(*model);
  model->eval();
  const std::string weights = (dir / "sam_l0.safetensors").string();
  model->save(weights);
  // A 90x120 picture: a bright disc on a dark ground.
  Image image(90, 120, 3);
  for (int64_t y = 0; y < 90; ++y)
    for (int64_t x = 0; x < 120; ++x)
      for (int64_t c = 0; c < 3; ++c)
        image.data[(y * 120 + x) * 3 + c] = (x - 60) * (x - 60) + (y - 45) * (y - 45) < 900 ? 220 : static_cast<uint8_t>(20 + c * 10);
  const std::string input = (dir / "disc.png").string();
  encode_png(input, image);
  const std::string prefix = (dir / "out").string();
  auto [rc, out] = test::run_evit("predict efficientvit-sam-l0 --weights " + weights + " --input " + input +
                                  " --box 30,15,90,75 --points 60,45 --points 5,5,0 --output " + prefix);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK_THAT(out, Catch::Contains("predicted IoU of the 3 masks") && Catch::Contains("out_overlay.png"));
  const Image mask = read_image(prefix + "_mask.png");
  const Image overlay = read_image(prefix + "_overlay.png");
  REQUIRE((mask.height == 90 && mask.width == 120 && mask.channels == 1));
  REQUIRE((overlay.height == 90 && overlay.width == 120 && overlay.channels == 3));
  // The written mask is the predictor's best mask for the same prompts.
  train::SamPredictor predictor(model);
  predictor.set_image(image);
  const auto p = predictor.predict({{{60, 45, 1}, {5, 5, 0}}, std::array<float, 4>{30, 15, 90, 75}}, true);
  const auto want = p.mask(p.best());
  int64_t differ = 0;
  for (size_t i = 0; i < want.size(); ++i) differ += (mask.data[i] == 255) != (want[i] == 1);
  CHECK(differ == 0);
  // The box outline is drawn in green at its top-left corner; the background point in red.
  const uint8_t* corner = &overlay.data[(15 * 120 + 30) * 3];
  CHECK((corner[0] == 0 && corner[1] == 220 && corner[2] == 0));
  const uint8_t* negative = &overlay.data[(5 * 120 + 5) * 3];
  CHECK((negative[0] == 230 && negative[1] == 0 && negative[2] == 0));

  // Prompts are checked before any work, naming the option.
  auto [rc2, out2] = test::run_evit("predict efficientvit-sam-l0 --weights " + weights + " --input " + input +
                                    " --box 30,15,90 --output " + prefix);
  CHECK(rc2 != 0);
  CHECK_THAT(out2, Catch::Contains("--box '30,15,90'"));
  auto [rc3, out3] = test::run_evit("predict efficientvit-sam-l0 --weights " + weights + " --input " + input +
                                    " --output " + prefix);
  CHECK(rc3 != 0);
  CHECK_THAT(out3, Catch::Contains("needs a prompt"));
}
