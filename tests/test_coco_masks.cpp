// COCO masks and instance annotations against pycocotools (tools/golden/gen_coco_masks.py, PyPI
// pycocotools): polygon rasterisation, RLE strings, merges, areas and boxes byte for byte, on
// generated shapes and on every annotation of the shared COCO val2017 sample; and the readers'
// errors on malformed files.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"
#include "data/coco_rle.h"
#include "data/instances.h"
#include "support/test_util.h"

using namespace evit;
using namespace evit::data;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const json& golden() {
  static const json g = json::parse(read_file(std::string(EVIT_GOLDEN_DIR) + "/coco_masks.json"));
  return g;
}

std::array<double, 4> bbox_of(const json& v) { return {v[0].get<double>(), v[1].get<double>(), v[2].get<double>(), v[3].get<double>()}; }

std::string temp_file(const std::string& name, const std::string& text) {
  const fs::path dir = fs::temp_directory_path() / "evit_test_coco";
  fs::create_directories(dir);
  const std::string path = (dir / name).string();
  std::ofstream(path) << text;
  return path;
}

// The message of the Error `fn` throws ("" when it throws none).
template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("polygon masks are byte-equal to pycocotools", "[coco]") {
  int cases = 0;
  for (const json& c : golden().at("polygons")) {
    INFO(c.at("name").get<std::string>());
    const int64_t h = c.at("h"), w = c.at("w");
    std::vector<Rle> parts;
    for (size_t i = 0; i < c.at("parts").size(); ++i) {
      parts.push_back(rle_from_polygon(c.at("parts")[i].get<std::vector<double>>(), h, w, "test"));
      CHECK(rle_to_string(parts.back()) == c.at("part_strings")[i].get<std::string>());
    }
    const Rle merged = rle_merge(parts, false, "test");
    CHECK(rle_to_string(merged) == c.at("string").get<std::string>());
    CHECK(rle_area(merged) == c.at("area").get<int64_t>());
    CHECK(rle_bbox(merged) == bbox_of(c.at("bbox")));
    ++cases;
  }
  CHECK(cases >= 50);
  for (const json& c : golden().at("boxes")) {
    INFO(c.at("name").get<std::string>());
    const std::array<double, 4> box = bbox_of(c.at("box"));
    CHECK(rle_to_string(rle_from_box(box, c.at("h"), c.at("w"), "test")) == c.at("string").get<std::string>());
  }
}

TEST_CASE("RLE encode, decode, strings, merges, areas and boxes are byte-equal to pycocotools", "[coco]") {
  std::vector<Rle> rles;
  for (const json& c : golden().at("masks")) {
    INFO(c.at("name").get<std::string>());
    const int64_t h = c.at("h"), w = c.at("w");
    const Rle given = rle_from_counts(c.at("counts").get<std::vector<int64_t>>(), h, w, "test");
    const std::vector<uint8_t> mask = rle_decode(given);
    const Rle encoded = rle_encode(mask.data(), h, w);
    CHECK(encoded.counts == given.counts);
    const std::string s = rle_to_string(encoded);
    CHECK(s == c.at("string").get<std::string>());
    const Rle parsed = rle_from_string(s, h, w, "test");
    CHECK(parsed.counts == given.counts);
    CHECK(rle_area(parsed) == c.at("area").get<int64_t>());
    CHECK(rle_bbox(parsed) == bbox_of(c.at("bbox")));
    rles.push_back(parsed);
  }
  // Row-major in, column-major runs: a mask with one pixel set at (y=0, x=1) of a 2×3 image.
  const uint8_t m[6] = {0, 1, 0, 0, 0, 0};
  CHECK(rle_encode(m, 2, 3).counts == std::vector<uint32_t>{2, 1, 3});
  for (const json& c : golden().at("merges")) {
    const Rle& a = rles.at(c.at("a").get<size_t>());
    const Rle& b = rles.at(c.at("b").get<size_t>());
    CHECK(rle_to_string(rle_merge({a, b}, false, "test")) == c.at("union").get<std::string>());
    CHECK(rle_to_string(rle_merge({a, b}, true, "test")) == c.at("intersection").get<std::string>());
  }
  CHECK(golden().at("merges").size() >= 3);
}

TEST_CASE("every annotation of the shared COCO sample decodes as pycocotools' annToRLE", "[coco]") {
  const std::string shared = test::shared_data_dir();
  if (shared.empty()) return test::skip(test::no_shared_data("the COCO sample mask check"));
  const InstanceSet set = read_instances(shared + "/coco_val2017_samples/annotations/instances_val2017.json");
  CHECK(set.format == "coco");
  CHECK(set.images.size() == 79);
  CHECK(set.categories.size() == 80);
  REQUIRE(set.annotations.size() == 624);
  const json& want = golden().at("coco_samples");
  REQUIRE(want.size() == 624);
  int crowd = 0;
  for (const InstanceAnnotation& ann : set.annotations) {
    INFO("annotation " << ann.id);
    const json& w = want.at(std::to_string(ann.id));
    const Rle rle = annotation_mask(set, ann);
    const InstanceImage& image = set.images[set.image_index(ann.image_id)];
    CHECK((rle.h == image.height && rle.w == image.width));
    CHECK(rle_to_string(rle) == w.at("string").get<std::string>());
    CHECK(rle_area(rle) == w.at("area").get<int64_t>());
    CHECK(rle_bbox(rle) == bbox_of(w.at("bbox")));
    crowd += ann.iscrowd;
  }
  CHECK(crowd == 5);
  size_t per_image = 0;
  for (const InstanceImage& im : set.images) per_image += set.annotations_of(im.id).size();
  CHECK(per_image == set.annotations.size());
}

TEST_CASE("LVIS and SA-1B annotation files are read", "[coco]") {
  const std::string lvis = temp_file("lvis.json", R"({
    "images": [{"id": 7, "height": 4, "width": 5, "coco_url": "http://images.cocodataset.org/train2017/000000000007.jpg"}],
    "categories": [{"id": 3, "name": "aerosol_can"}],
    "annotations": [{"id": 11, "image_id": 7, "category_id": 3, "bbox": [1, 1, 2, 2], "area": 4,
                     "segmentation": [[1, 1, 3, 1, 3, 3, 1, 3]]}]})");
  const InstanceSet l = read_instances(lvis);
  CHECK(l.format == "lvis");
  REQUIRE(l.images.size() == 1);
  CHECK(l.images[0].file == "train2017/000000000007.jpg");
  CHECK(rle_area(annotation_mask(l, l.annotations[0])) == 4);

  const std::string sa = temp_file("sa_1.json", R"({
    "image": {"image_id": 1, "width": 3, "height": 2, "file_name": "sa_1.jpg"},
    "annotations": [{"id": 5, "bbox": [1, 0, 1, 2], "area": 2, "segmentation": {"size": [2, 3], "counts": "222"},
                     "point_coords": [[1.5, 0.5]], "predicted_iou": 0.9, "stability_score": 0.95, "crop_box": [0, 0, 3, 2]}]})");
  const InstanceSet s = read_sa1b_image(sa);
  CHECK(s.format == "sa1b");
  REQUIRE(s.annotations.size() == 1);
  const InstanceAnnotation& a = s.annotations[0];
  CHECK(a.point_coords.size() == 1);
  CHECK(a.predicted_iou == Approx(0.9));
  const std::vector<uint8_t> mask = rle_decode(annotation_mask(s, a));
  CHECK(mask == std::vector<uint8_t>{0, 1, 0, 0, 1, 0});  // column x = 1, both rows

  // The folder listing pairs each sa_N.json with its image and refuses a missing one.
  const fs::path dir = fs::temp_directory_path() / "evit_test_sa1b";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream((dir / "sa_10.json").string()) << "{}";
  std::ofstream((dir / "sa_10.jpg").string()) << "x";
  std::ofstream((dir / "sa_9.json").string()) << "{}";
  std::ofstream((dir / "sa_9.jpg").string()) << "x";
  const auto entries = list_sa1b(dir.string());
  REQUIRE(entries.size() == 2);
  CHECK(fs::path(entries[0].json_path).filename() == "sa_9.json");
  std::ofstream((dir / "sa_11.json").string()) << "{}";
  CHECK_THAT(error_of([&] { list_sa1b(dir.string()); }), Catch::Contains("sa_11.json") && Catch::Contains("no image"));
}

TEST_CASE("malformed annotation files are errors naming the file and the annotation", "[coco]") {
  auto coco = [](const std::string& annotation) {
    return R"({"images": [{"id": 1, "height": 10, "width": 10, "file_name": "a.jpg"}],
               "categories": [{"id": 1, "name": "thing"}], "annotations": [)" + annotation + "]}";
  };
  const std::string ok_fields = R"("image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "area": 4)";
  struct Case {
    std::string annotation, expect;
  };
  const Case cases[] = {
      {R"({"id": 42, )" + ok_fields + R"(, "segmentation": [[0, 0, 2, 0, 2]]})", "odd number"},
      {R"({"id": 42, )" + ok_fields + R"(, "segmentation": [[0, 0, 2, "x", 2, 2]]})", "must be a number"},
      {R"({"id": 42, )" + ok_fields + R"(, "segmentation": {"size": [10, 10], "counts": [50, 40]}})", "sum to 90"},
      {R"({"id": 42, )" + ok_fields + R"(, "segmentation": {"size": [10, 10], "counts": [50, -1, 51]}})", "count 1 is -1"},
      {R"({"id": 42, )" + ok_fields + R"(, "segmentation": {"size": [9, 10], "counts": [90]}})", "is 9x10 but image 1 is 10x10"},
      {R"({"id": 42, )" + ok_fields + R"(, "segmentation": {"size": [10, 10], "counts": "0~~"}})", "character '~'"},
      {R"({"id": 42, )" + ok_fields + R"(, "segmentation": {"size": [10, 10], "counts": "Q"}})", "ends inside a run"},
      {R"({"id": 42, "image_id": 2, "category_id": 1, "bbox": [0, 0, 2, 2], "area": 4, "segmentation": []})", "image_id 2 is not in"},
      {R"({"id": 42, "image_id": 1, "category_id": 9, "bbox": [0, 0, 2, 2], "area": 4, "segmentation": []})", "category_id 9 is not in"},
      {R"({"id": 42, "image_id": 1, "category_id": 1, "bbox": [0, 0, -2, 2], "area": 4, "segmentation": []})", "negative size"},
      {R"({"id": 42, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2], "area": 4, "segmentation": []})", "bbox"},
      {R"({"id": 42, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "segmentation": []})", "\"area\" is missing"},
  };
  for (const Case& c : cases) {
    INFO(c.annotation);
    const std::string msg = error_of([&] { parse_instances(coco(c.annotation), "bad.json"); });
    CHECK_THAT(msg, Catch::Contains("bad.json") && Catch::Contains("annotation 42") && Catch::Contains(c.expect));
  }
  CHECK_THAT(error_of([] { parse_instances("{\"images\": [", "cut.json"); }),
             Catch::Contains("cut.json") && Catch::Contains("not valid JSON"));
  // Polygons are rasterised on demand; absurd coordinates are refused there, naming the annotation.
  const InstanceSet far = parse_instances(coco(R"({"id": 43, )" + ok_fields + R"(, "segmentation": [[0, 0, 5e7, 0, 0, 5]]})"), "far.json");
  CHECK_THAT(error_of([&] { annotation_mask(far, far.annotations[0]); }),
             Catch::Contains("far.json: annotation 43") && Catch::Contains("within +-1e6"));
  // A polygon whose boundary walk would be enormous is refused instead of taking minutes.
  std::vector<double> zigzag;
  for (int i = 0; i < 200; ++i) zigzag.insert(zigzag.end(), {i % 2 ? 9e5 : -9e5, static_cast<double>(i)});
  CHECK_THAT(error_of([&] { rle_from_polygon(zigzag, 10, 10, "zigzag"); }), Catch::Contains("boundary is"));
  // Sizes and merges.
  CHECK_THAT(error_of([] { rle_merge({Rle{2, 2, {4}}, Rle{2, 3, {6}}}, false, "m"); }), Catch::Contains("cannot merge"));
  CHECK_THAT(error_of([] { rle_from_string("", 70000, 70000, "huge"); }), Catch::Contains("2^32-1 pixels"));
}
