// Demo helpers: the synthetic Cityscapes-layout dataset and the label / image renderings.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>

#include "data/colorize.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/synthetic.h"
#include "tests/support/test_util.h"

using namespace evit;
namespace fs = std::filesystem;

namespace {
std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
// All files under root, by relative path.
std::map<std::string, std::string> tree_bytes(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) out[fs::relative(e.path(), root).string()] = read_bytes(e.path());
  return out;
}
}  // namespace

TEST_CASE("synthetic Cityscapes: official layout that the loader reads", "[demo]") {
  fs::path root = fs::temp_directory_path() / "evit_synth_a";
  fs::remove_all(root);
  data::write_synthetic_cityscapes(root.string(), 6, 3, 64, 128, 5);
  auto files = tree_bytes(root);
  int n_img = 0, n_lab = 0;
  for (auto& [rel, bytes] : files) {
    if (rel.find("_leftImg8bit.png") != std::string::npos) ++n_img;
    if (rel.find("_gtFine_labelIds.png") != std::string::npos) ++n_lab;
    REQUIRE(bytes.substr(0, 8) == "\x89PNG\r\n\x1a\n");
  }
  REQUIRE(n_img == 9);
  REQUIRE(n_lab == 9);

  auto train = data::cityscapes(root.string(), "train");
  auto val = data::cityscapes(root.string(), "val");
  REQUIRE(train->size() == 6);
  REQUIRE(val->size() == 3);

  std::map<int64_t, int64_t> counts;
  int64_t top_sky = 0, top_total = 0, bottom_road = 0, bottom_total = 0;
  for (int64_t i = 0; i < train->size(); ++i) {
    data::Sample s = train->load(i);
    REQUIRE(s.input.sizes() == Shape{3, 64, 128});
    REQUIRE(s.target.sizes() == Shape{64, 128});
    auto t = s.target.to_vector<int64_t>();
    std::set<int64_t> present;
    for (int64_t y = 0; y < 64; ++y)
      for (int64_t x = 0; x < 128; ++x) {
        int64_t v = t[y * 128 + x];
        REQUIRE((v == 255 || (v >= 0 && v < 19)));
        counts[v]++;
        present.insert(v);
        if (y < 4) top_total++, top_sky += v == 10;            // sky is trainId 10
        if (y >= 48) bottom_total++, bottom_road += v == 0;    // road is trainId 0
      }
    // Every frame has at least sky, building, road and sidewalk or terrain.
    REQUIRE(present.size() >= 4);
    // The image is not flat: its pixel values spread.
    auto px = s.input.to_vector<float>();
    auto [mn, mx] = std::minmax_element(px.begin(), px.end());
    REQUIRE(*mx - *mn > 0.5f);
  }
  // The road, sidewalk, building, pole, vegetation, sky and car trainIds all occur.
  for (int64_t id : {0, 1, 2, 5, 8, 10, 13}) {
    INFO("trainId " << id);
    REQUIRE(counts[id] > 0);
  }
  REQUIRE(top_sky > 0.8 * top_total);
  REQUIRE(bottom_road > 0.25 * bottom_total);
  fs::remove_all(root);
}

TEST_CASE("synthetic Cityscapes: the same seed gives identical bytes, another seed differs", "[demo]") {
  fs::path a = fs::temp_directory_path() / "evit_synth_b1", b = fs::temp_directory_path() / "evit_synth_b2",
           c = fs::temp_directory_path() / "evit_synth_b3";
  for (auto& p : {a, b, c}) fs::remove_all(p);
  data::write_synthetic_cityscapes(a.string(), 3, 2, 48, 64, 42);
  data::write_synthetic_cityscapes(b.string(), 3, 2, 48, 64, 42);
  data::write_synthetic_cityscapes(c.string(), 3, 2, 48, 64, 43);
  auto ta = tree_bytes(a), tb = tree_bytes(b), tc = tree_bytes(c);
  REQUIRE(ta.size() == 10);
  REQUIRE(ta == tb);
  REQUIRE(ta.size() == tc.size());
  int differing = 0;
  for (auto& [rel, bytes] : ta) differing += tc.at(rel) != bytes;
  REQUIRE(differing == 10);
  // Frames within one dataset differ from each other too.
  REQUIRE(ta.begin()->second != std::next(ta.begin())->second);
  REQUIRE_THROWS_WITH(data::write_synthetic_cityscapes(a.string(), 1, 1, 16, 64, 0),
                      Catch::Contains("too small"));
  for (auto& p : {a, b, c}) fs::remove_all(p);
}

TEST_CASE("palette: the Cityscapes trainId colours, distinct colours for other counts", "[demo]") {
  auto p = data::palette(19);
  REQUIRE(p.size() == 19);
  REQUIRE(p[0] == data::Colour{128, 64, 128});   // road
  REQUIRE(p[1] == data::Colour{244, 35, 232});   // sidewalk
  REQUIRE(p[2] == data::Colour{70, 70, 70});     // building
  REQUIRE(p[10] == data::Colour{70, 130, 180});  // sky
  REQUIRE(p[13] == data::Colour{0, 0, 142});     // car
  REQUIRE(p[18] == data::Colour{119, 11, 32});   // bicycle
  auto q = data::palette(150);
  std::set<data::Colour> distinct(q.begin(), q.end());
  REQUIRE(distinct.size() == 150);
  REQUIRE(distinct.count(data::Colour{0, 0, 0}) == 0);
  REQUIRE(data::palette(150) == q);  // deterministic
  // Class 0 of the generic palette: id 1 -> only bit 0 -> R's top bit.
  REQUIRE(q[0] == data::Colour{128, 0, 0});
}

TEST_CASE("colorize and overlay paint classes, leave ignored pixels alone", "[demo]") {
  Tensor labels = from_vector<int64_t>({0, 10, 255, 18}, {2, 2});
  Image c = data::colorize(labels);
  REQUIRE(c.height == 2);
  REQUIRE(c.width == 2);
  REQUIRE(c.channels == 3);
  REQUIRE(std::vector<uint8_t>(c.data.begin(), c.data.begin() + 3) == std::vector<uint8_t>{128, 64, 128});
  REQUIRE(std::vector<uint8_t>(c.data.begin() + 3, c.data.begin() + 6) == std::vector<uint8_t>{70, 130, 180});
  REQUIRE(std::vector<uint8_t>(c.data.begin() + 6, c.data.begin() + 9) == std::vector<uint8_t>{0, 0, 0});
  REQUIRE(std::vector<uint8_t>(c.data.begin() + 9, c.data.end()) == std::vector<uint8_t>{119, 11, 32});

  // Gray image 0.4 (= 102 of 255): road pixel -> 0.5*102 + 0.5*(128,64,128) = (115, 83, 115).
  Tensor img = full({3, 2, 2}, 0.4);
  Image o = data::overlay(img, labels, 0.5);
  REQUIRE(std::vector<uint8_t>(o.data.begin(), o.data.begin() + 3) == std::vector<uint8_t>{115, 83, 115});
  REQUIRE(std::vector<uint8_t>(o.data.begin() + 6, o.data.begin() + 9) == std::vector<uint8_t>{102, 102, 102});
  // alpha = 1 is the colorized labels wherever there is a class.
  Image o1 = data::overlay(img, labels, 1.0);
  REQUIRE(std::vector<uint8_t>(o1.data.begin() + 9, o1.data.end()) == std::vector<uint8_t>{119, 11, 32});

  REQUIRE_THROWS_WITH(data::colorize(from_vector<int64_t>({0, 19}, {1, 2})), Catch::Contains("label 19 at (0, 1)"));
  REQUIRE_THROWS_WITH(data::colorize(from_vector<float>({0, 1}, {1, 2})), Catch::Contains("i64 [H,W]"));
  REQUIRE_THROWS_WITH(data::overlay(full({3, 3, 2}, 0.5), labels), Catch::Contains("differ in size"));
  // 150 classes: label 149 is fine there.
  Image ade = data::colorize(from_vector<int64_t>({149}, {1, 1}), 150);
  REQUIRE(data::palette(150)[149] == data::Colour{ade.data[0], ade.data[1], ade.data[2]});
}

TEST_CASE("side_by_side concatenates same-height images left to right", "[demo]") {
  Image gray(2, 1, 1), rgb(2, 2, 3);
  gray.data = {10, 20};
  for (size_t i = 0; i < rgb.data.size(); ++i) rgb.data[i] = static_cast<uint8_t>(100 + i);
  Image s = data::side_by_side({gray, rgb});
  REQUIRE(s.height == 2);
  REQUIRE(s.width == 3);
  REQUIRE(s.channels == 3);
  // Row 0: gray 10 repeated, then rgb pixels (100,101,102) and (103,104,105).
  std::vector<uint8_t> row0(s.data.begin(), s.data.begin() + 9);
  REQUIRE(row0 == std::vector<uint8_t>{10, 10, 10, 100, 101, 102, 103, 104, 105});
  std::vector<uint8_t> row1(s.data.begin() + 9, s.data.end());
  REQUIRE(row1 == std::vector<uint8_t>{20, 20, 20, 106, 107, 108, 109, 110, 111});
  REQUIRE_THROWS_WITH(data::side_by_side({gray, Image(3, 2, 3)}), Catch::Contains("height differs"));
  REQUIRE_THROWS_WITH(data::side_by_side({}), Catch::Contains("no images"));
}
