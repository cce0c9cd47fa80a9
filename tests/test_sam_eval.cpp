// SAM evaluation: the exact distance transform, the RITM clicker, the IoU buckets, and metric
// parity with the official EfficientViT-SAM evaluation script on the shared COCO sample
// (tools/reference/sam_eval_parity.py; same fixed weights on both sides).
#include <catch2/catch.hpp>

#include <filesystem>
#include <random>

#include <nlohmann/json.hpp>

#include "core/file_io.h"
#include "data/coco_rle.h"
#include "data/distance_transform.h"
#include "data/image.h"
#include "data/instances.h"
#include "nn/module.h"
#include "support/test_util.h"
#include "train/sam_eval.h"
#include "zoo/sam.h"

using namespace evit;
using nlohmann::json;

TEST_CASE("the distance transform is the exact Euclidean one", "[sam]") {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 30; ++trial) {
    const int64_t h = 1 + rng() % 23, w = 1 + rng() % 29;
    std::vector<uint8_t> m(static_cast<size_t>(h * w));
    const unsigned density = 1 + rng() % 9;
    for (auto& v : m) v = (rng() % 10) < density;
    for (bool padded : {true, false}) {
      INFO("trial " << trial << " " << h << "x" << w << " padded " << padded);
      const auto d = data::squared_distance_transform(m, h, w, padded);
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          int64_t best = -1;
          auto consider = [&](int64_t yy, int64_t xx) {
            const int64_t v = (yy - y) * (yy - y) + (xx - x) * (xx - x);
            if (best < 0 || v < best) best = v;
          };
          if (!m[y * w + x]) {
            best = 0;
          } else {
            for (int64_t yy = 0; yy < h; ++yy)
              for (int64_t xx = 0; xx < w; ++xx)
                if (!m[yy * w + xx]) consider(yy, xx);
            if (padded)
              for (int64_t yy = -1; yy <= h; ++yy)
                for (int64_t xx = -1; xx <= w; ++xx)
                  if (yy == -1 || xx == -1 || yy == h || xx == w) consider(yy, xx);
          }
          REQUIRE(d[y * w + x] == best);
        }
    }
  }
}

TEST_CASE("the clicker goes to the deepest error pixel, positive for misses", "[sam]") {
  // A 9x11 image with a 5x7 object at rows 2..6, columns 2..8.
  const int64_t h = 9, w = 11;
  std::vector<uint8_t> gt(h * w, 0);
  for (int64_t y = 2; y <= 6; ++y)
    for (int64_t x = 2; x <= 8; ++x) gt[y * w + x] = 1;
  train::Clicker clicker(gt, h, w);
  const train::Click first = clicker.next(std::vector<uint8_t>(h * w, 0));
  CHECK(first.positive);
  CHECK((first.y == 4 && first.x == 4));  // depth 3 along row 4 from column 4 to 6: the first wins
  // Predicting the object plus a 3x3 blob outside: the blob is the larger error -> negative click.
  std::vector<uint8_t> pred = gt;
  for (int64_t y = 0; y <= 2; ++y)
    for (int64_t x = 0; x <= 2; ++x) pred[y * w + x] = 1;
  pred[2 * w + 2] = 1;
  const train::Click second = clicker.next(pred);
  CHECK_FALSE(second.positive);
  CHECK((second.y == 1 && second.x == 1));  // 1.41 from the object and from the padding
  // No error left: a negative click at the first pixel, as the reference does.
  const train::Click third = clicker.next(gt);
  CHECK_FALSE(third.positive);
  CHECK((third.x == 0 && third.y == 0));
  CHECK(clicker.clicks().size() == 3);
}

TEST_CASE("instance IoUs are bucketed by area with both ends inclusive", "[sam]") {
  CHECK(train::mask_iou_percent({1, 1, 0, 0}, {1, 0, 1, 0}) == Approx(100.0 / 3));
  CHECK(train::mask_iou_percent({0, 0}, {0, 0}) == 0);
  std::vector<train::SamInstanceScore> r = {
      {1, 1, 1024, {10}, {}}, {2, 1, 9216, {20}, {}}, {3, 1, 50, {30}, {}}, {4, 1, 20000, {40}, {}}};
  const auto s = train::sam_bucket_scores(r, 0);
  CHECK(s.count.at("all") == 4);
  CHECK(s.count.at("small") == 2);   // 50 and 1024
  CHECK(s.count.at("medium") == 2);  // 1024 and 9216
  CHECK(s.count.at("large") == 2);   // 9216 and 20000
  CHECK(s.miou.at("all") == Approx(25));
  CHECK(s.miou.at("medium") == Approx(15));
}

TEST_CASE("SAM box and click mIoU equal the official evaluation's on the shared COCO sample", "[sam]") {
  const std::string shared = test::shared_data_dir();
  if (shared.empty()) return test::skip(test::no_shared_data("the SAM metric parity check"));
  const json want = json::parse(read_file(std::string(EVIT_GOLDEN_DIR) + "/sam_eval.json"));
  auto model = zoo::make_efficientvit_sam("l0");
  test::fill_deterministic(*model);
  // The golden's changes to the hypernetworks' last layers (see the generator).
  const double scale = want.at("scale_hypernetwork_weights");
  auto state = model->state_dict();
  for (const auto& [key, values] : want.at("hypernetwork_biases").items()) {
    Tensor bias = state.at(key);
    const auto v = values.get<std::vector<float>>();
    REQUIRE(static_cast<int64_t>(v.size()) == bias.numel());
    std::copy(v.begin(), v.end(), bias.data_ptr<float>());
    Tensor weight = state.at(key.substr(0, key.size() - 4) + "weight");
    float* p = weight.data_ptr<float>();
    for (int64_t i = 0; i < weight.numel(); ++i) p[i] = static_cast<float>(p[i] * scale);
  }
  model->eval();
  const std::string root = shared + "/coco_val2017_samples";
  const data::InstanceSet set = data::read_instances(root + "/annotations/instances_val2017.json");
  train::SamPredictor predictor(model);
  train::SamEvalOptions box_options;
  box_options.max_images = static_cast<int64_t>(want.at("images").size());
  const train::SamEvalResult box = train::evaluate_sam(predictor, set, root + "/val2017", box_options);
  train::SamEvalOptions point_options = box_options;
  point_options.prompt = "points";
  const train::SamEvalResult points = train::evaluate_sam(predictor, set, root + "/val2017", point_options);
  REQUIRE(box.instances.size() == want.at("annotations").size());
  REQUIRE(points.instances.size() == box.instances.size());
  for (size_t i = 0; i < box.instances.size(); ++i) {
    const json& a = want.at("annotations").at(std::to_string(box.instances[i].annotation_id));
    INFO("annotation " << box.instances[i].annotation_id);
    CHECK(box.instances[i].iou[0] == Approx(a.at("box").get<double>()).margin(0.01));
    CHECK(points.instances[i].iou[0] == Approx(a.at("clicks").at("1").get<double>()).margin(0.01));
    CHECK(points.instances[i].iou[1] == Approx(a.at("clicks").at("3").get<double>()).margin(0.01));
    CHECK(points.instances[i].iou[2] == Approx(a.at("clicks").at("5").get<double>()).margin(0.01));
    const auto& placed = a.at("placed");
    REQUIRE(points.instances[i].clicks.size() == placed.size());
    for (size_t k = 0; k < placed.size(); ++k) {
      CHECK(points.instances[i].clicks[k].x == placed[k][0].get<int64_t>());
      CHECK(points.instances[i].clicks[k].y == placed[k][1].get<int64_t>());
      CHECK(points.instances[i].clicks[k].positive == (placed[k][2].get<int>() == 1));
    }
  }
  for (const char* bucket : {"all", "small", "medium", "large"}) {
    INFO(bucket);
    CHECK(box.scores[0].miou.at(bucket) == Approx(want.at("box").at(bucket).get<double>()).margin(0.01));
    for (size_t c = 0; c < 3; ++c)
      CHECK(points.scores[c].miou.at(bucket) ==
            Approx(want.at("points").at(std::to_string(point_options.clicks[c])).at(bucket).get<double>()).margin(0.01));
  }
  CHECK_THAT(train::format_sam_table(points), Catch::Contains("3 clicks") && Catch::Contains("instances: 27"));
}

TEST_CASE("evit eval --task sam prints the bucket table and writes per-instance results", "[sam][cli]") {
  const std::string shared = test::shared_data_dir();
  if (shared.empty()) return test::skip(test::no_shared_data("the evit eval --task sam check"));
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "evit_test_sam_eval";
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto model = zoo::make_efficientvit_sam("l0");
  test::fill_deterministic(*model);
  const std::string weights = (dir / "l0.safetensors").string();
  model->save(weights);
  const std::string out_json = (dir / "box.json").string();
  auto [rc, out] = test::run_evit("eval --task sam --model efficientvit-sam-l0 --weights " + weights + " --data " + shared +
                                  "/coco_val2017_samples --prompt box --max-images 1 --output " + out_json);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK_THAT(out, Catch::Contains("prompt") && Catch::Contains("medium") && Catch::Contains("instances: 19 (small 10, medium 6, large 3) in 1 images"));
  const json j = json::parse(read_file(out_json));
  CHECK(j.at("per_instance").size() == 19);
  CHECK(j.at("instances").at("box").at("all") == 19);
  auto [rc2, out2] = test::run_evit("eval --task sam --model efficientvit-sam-l0 --weights " + weights + " --data " +
                                    (dir / "nowhere").string());
  CHECK(rc2 != 0);
  CHECK_THAT(out2, Catch::Contains("nowhere"));
}

TEST_CASE("detector boxes come back with their masks in the COCO results format", "[sam]") {
  const std::string shared = test::shared_data_dir();
  if (shared.empty()) return test::skip(test::no_shared_data("the detections-to-masks check"));
  const std::string root = shared + "/coco_val2017_samples";
  const data::InstanceSet set = data::read_instances(root + "/annotations/instances_val2017.json");
  auto model = zoo::make_efficientvit_sam("l0");
  test::fill_deterministic(*model);
  model->eval();
  train::SamPredictor predictor(model);
  // Two "detections" on the second image and one on the first, interleaved.
  const auto& first = set.images[0];
  const auto& second = set.images[1];
  json dets = json::array({{{"image_id", second.id}, {"category_id", 1}, {"bbox", {10, 20, 100, 80}}, {"score", 0.9}},
                           {{"image_id", first.id}, {"category_id", 3}, {"bbox", {200.5, 100, 50, 60}}, {"score", 0.5}},
                           {{"image_id", second.id}, {"category_id", 1}, {"bbox", {300, 50, 120, 200}}, {"score", 0.7}}});
  const json out = train::sam_masks_for_detections(predictor, set, root + "/val2017", dets);
  REQUIRE(out.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    INFO("detection " << i);
    CHECK(out[i].at("score") == dets[i].at("score"));
    const json& seg = out[i].at("segmentation");
    const auto& im = set.images[set.image_index(dets[i].at("image_id").get<int64_t>())];
    CHECK(seg.at("size") == json({im.height, im.width}));
    // The RLE is the predictor's best mask for the same box.
    const data::Rle rle = data::rle_from_string(seg.at("counts").get<std::string>(), im.height, im.width, "test");
    predictor.set_image(read_image(root + "/val2017/" + im.file));
    const auto b = dets[i].at("bbox").get<std::vector<float>>();
    const auto p = predictor.predict({{}, std::array<float, 4>{b[0], b[1], b[0] + b[2], b[1] + b[3]}}, true);
    CHECK(data::rle_decode(rle) == p.mask(p.best()));
  }
  json bad = dets;
  bad[1]["image_id"] = 123456789;
  CHECK_THROWS_WITH(train::sam_masks_for_detections(predictor, set, root + "/val2017", bad),
                    Catch::Contains("detections[1]") && Catch::Contains("123456789"));
  bad = dets;
  bad[2]["bbox"] = {1, 2, 3};
  CHECK_THROWS_WITH(train::sam_masks_for_detections(predictor, set, root + "/val2017", bad),
                    Catch::Contains("detections[2]") && Catch::Contains("bbox"));
}
