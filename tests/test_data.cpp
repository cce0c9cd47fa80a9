// Datasets, transforms and the DataLoader: official layouts, label mapping, error messages,
// and batches that do not depend on the number of workers.
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <map>

#include "data/dataset.h"
#include "data/image.h"
#include "data/loader.h"
#include "data/resize_u8.h"
#include "data/transforms.h"
#include "ops/ops.h"
#include "tests/support/test_util.h"

using namespace evit;
namespace fs = std::filesystem;

namespace {
// A tiny Cityscapes-layout dataset: `n` frames of h x w with labelIds drawn from `ids`.
std::string make_cityscapes(const std::string& name, int n, int64_t h, int64_t w) {
  fs::path root = fs::temp_directory_path() / name;
  fs::remove_all(root);
  for (const char* city : {"aachen", "bremen"}) {
    fs::create_directories(root / "leftImg8bit/train" / city);
    fs::create_directories(root / "gtFine/train" / city);
  }
  Generator g(11);
  for (int i = 0; i < n; ++i) {
    std::string city = i % 2 ? "bremen" : "aachen";
    std::string stem = city + "_00000" + std::to_string(i) + "_000019";
    Image img(h, w, 3), lab(h, w, 1);
    for (auto& v : img.data) v = static_cast<uint8_t>(g.next_u64() % 256);
    const uint8_t ids[] = {7, 8, 26, 0, 33};
    for (auto& v : lab.data) v = ids[g.next_u64() % 5];
    encode_png((root / "leftImg8bit/train" / city / (stem + "_leftImg8bit.png")).string(), img);
    encode_png((root / "gtFine/train" / city / (stem + "_gtFine_labelIds.png")).string(), lab);
  }
  return root.string();
}
}  // namespace

TEST_CASE("Cityscapes layout: images, labels mapped to trainIds, sorted order", "[data]") {
  std::string root = make_cityscapes("evit_cs_a", 4, 16, 24);
  auto ds = data::cityscapes(root, "train");
  REQUIRE(ds->size() == 4);
  REQUIRE(ds->num_classes() == 19);
  data::Sample s = ds->load(0);
  REQUIRE(s.input.sizes() == Shape{3, 16, 24});
  REQUIRE(s.target.dtype() == DType::i64);
  for (int64_t v : s.target.to_vector<int64_t>())
    REQUIRE((v == 0 || v == 1 || v == 13 || v == 18 || v == 255));  // 7,8,26,33 and ignored 0
  REQUIRE(s.id.find("aachen") != std::string::npos);
  auto m = data::cityscapes_label_map();
  REQUIRE(m[7] == 0);
  REQUIRE(m[33] == 18);
  REQUIRE(m[6] == 255);
  REQUIRE(m[34] == 255);
}

TEST_CASE("the Cityscapes sample's labelIds map to its labelTrainIds", "[data]") {
  std::string shared = test::shared_data_dir();
  if (shared.empty()) return test::skip(test::no_shared_data("the Cityscapes sample check"));
  auto ds = data::cityscapes(shared + "/cityscapes_samples", "val");
  REQUIRE(ds->size() == 1);
  data::Sample s = ds->load(0);
  Image ref = read_image(shared +
                         "/cityscapes_samples/gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelTrainIds.png");
  Image ids = read_image(shared + "/cityscapes_samples/gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelIds.png");
  auto got = s.target.to_vector<int64_t>();
  REQUIRE(static_cast<int64_t>(got.size()) == ref.height * ref.width);
  // The two sample PNGs were downscaled separately (nearest), so about 1% of pixels (thin poles,
  // object borders) disagree. Check the mapping where it is well defined: the trainId most
  // labelTrainIds pixels of each labelId carry must be the one evit maps that id to, and overall
  // agreement must stay high.
  const int64_t H = ref.height, W = ref.width;
  std::map<int, std::map<int, int64_t>> votes;  // labelId -> trainId -> pixels
  int64_t same = 0;
  for (int64_t i = 0; i < H * W; ++i) {
    int expected = ref.samples8()[i * ref.channels];
    votes[ids.samples8()[i * ids.channels]][expected]++;
    same += got[i] == expected;
  }
  auto map = data::cityscapes_label_map();
  for (auto& [id, tally] : votes) {
    auto best = std::max_element(tally.begin(), tally.end(),
                                 [](auto& p, auto& q) { return p.second < q.second; });
    INFO("labelId " << id << ": majority trainId " << best->first << ", evit maps it to " << int(map[id]));
    REQUIRE(best->first == map[id]);
  }
  REQUIRE(same >= 0.97 * H * W);
  auto ade = data::ade20k(shared + "/ade20k_samples", "val");
  REQUIRE(ade->size() == 3);
  data::Sample a = ade->load(0);
  REQUIRE(a.target.size(0) == a.input.size(1));
  for (int64_t v : a.target.to_vector<int64_t>()) REQUIRE(((v >= 0 && v < 150) || v == 255));
}

TEST_CASE("dataset errors name the folder or file at fault", "[data]") {
  REQUIRE_THROWS_WITH(data::cityscapes("/nonexistent/cs", "train"), Catch::Contains("/nonexistent/cs/leftImg8bit/train"));
  std::string root = make_cityscapes("evit_cs_b", 2, 8, 8);
  fs::path lab = fs::path(root) / "gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png";
  encode_png(lab.string(), Image(4, 8, 1));  // wrong size
  auto ds = data::cityscapes(root, "train");
  REQUIRE_THROWS_WITH(ds->load(0), Catch::Contains("aachen_000000_000019_gtFine_labelIds.png") &&
                                       Catch::Contains("is 4x8 but image"));
  fs::remove(lab);
  REQUIRE_THROWS_WITH(data::cityscapes(root, "train"), Catch::Contains("has no label"));
  fs::create_directories(fs::path(root) / "leftImg8bit/val/x");
  fs::create_directories(fs::path(root) / "gtFine/val/x");
  REQUIRE_THROWS_WITH(data::cityscapes(root, "val"), Catch::Contains("no *_leftImg8bit.png images"));
  REQUIRE_THROWS_WITH(data::SRDataset("/nonexistent/hr", 2), Catch::Contains("/nonexistent/hr"));
  REQUIRE_THROWS_WITH(data::SRDataset(root, 5), Catch::Contains("scale must be 2, 3 or 4"));
}

TEST_CASE("the loader's batches do not depend on the number of workers", "[data]") {
  std::string root = make_cityscapes("evit_cs_c", 7, 20, 20);
  auto ds = data::cityscapes(root, "train");
  ds->set_transforms({data::random_scale_crop(0.5, 2.0, 16, 16), data::horizontal_flip(),
                      data::photometric_jitter(0.2, 0.2, 0.2), data::normalize()});
  auto run = [&](int workers, int64_t epoch) {
    data::LoaderOptions o;
    o.batch_size = 3;
    o.workers = workers;
    o.seed = 5;
    data::DataLoader loader(ds, o);
    loader.start_epoch(epoch);
    std::vector<data::Batch> out;
    data::Batch b;
    while (loader.next(b)) out.push_back(b);
    return out;
  };
  auto a = run(0, 1), b = run(3, 1), c = run(2, 2);
  REQUIRE(a.size() == 3);  // 7 samples, batch 3, no drop_last
  REQUIRE(a[2].input.size(0) == 1);
  REQUIRE(a[0].input.sizes() == Shape{3, 3, 16, 16});
  REQUIRE(a[0].target.sizes() == Shape{3, 16, 16});
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].ids == b[i].ids);
    REQUIRE(test::bitwise_equal(a[i].input, b[i].input));
    REQUIRE(test::bitwise_equal(a[i].target, b[i].target));
  }
  REQUIRE(a[0].ids != c[0].ids);  // another epoch, another order
}

TEST_CASE("epoch orders are permutations seeded by (seed, epoch)", "[data]") {
  std::string root = make_cityscapes("evit_cs_d", 6, 8, 8);
  auto ds = data::cityscapes(root, "train");
  data::LoaderOptions o;
  o.batch_size = 4;
  o.drop_last = true;
  data::DataLoader l(ds, o);
  REQUIRE(l.batches_per_epoch() == 1);
  auto e0 = l.epoch_order(0), e0b = l.epoch_order(0), e1 = l.epoch_order(1);
  REQUIRE(e0 == e0b);
  REQUIRE(e0 != e1);
  std::sort(e1.begin(), e1.end());
  REQUIRE(e1 == std::vector<int64_t>{0, 1, 2, 3, 4, 5});
  o.batch_size = 10;
  REQUIRE_THROWS_WITH(data::DataLoader(ds, o), Catch::Contains("fewer samples than one batch"));
}

TEST_CASE("collate names the sample whose shape differs", "[data]") {
  std::vector<data::Sample> s(2);
  s[0] = {zeros({3, 4, 4}), zeros({4, 4}, DType::i64), "a.png", Tensor()};
  s[1] = {zeros({3, 5, 4}), zeros({5, 4}, DType::i64), "b.png", Tensor()};
  REQUIRE_THROWS_WITH(data::collate(s), Catch::Contains("'b.png'") && Catch::Contains("[3,5,4]"));
}

TEST_CASE("super-resolution pairs: aligned crops and symmetric augmentation", "[data]") {
  fs::path dir = fs::temp_directory_path() / "evit_sr";
  fs::remove_all(dir);
  fs::create_directories(dir);
  Generator g(2);
  Image img(27, 33, 3);
  for (auto& v : img.data) v = static_cast<uint8_t>(g.next_u64() % 256);
  encode_png((dir / "a.png").string(), img);
  data::SRDataset ds(dir.string(), 3);
  data::Sample s = ds.load(0);
  REQUIRE(s.target.sizes() == Shape{3, 27, 33});
  REQUIRE(s.input.sizes() == Shape{3, 9, 11});
  ds.set_transforms({data::sr_patch_crop(4, 3), data::sr_flip_rotate()});
  Generator rg(4);
  data::Sample p = ds.get(0, rg);
  REQUIRE(p.input.sizes() == Shape{3, 4, 4});
  REQUIRE(p.target.sizes() == Shape{3, 12, 12});
  // The LR patch is the bicubic downscale of the HR patch region: their means agree closely.
  REQUIRE(std::abs(mean(p.input).item<double>() - mean(p.target).item<double>()) < 0.05);
}

TEST_CASE("mixup and cutmix keep soft targets normalised", "[data]") {
  Generator g(9);
  Tensor x = rand({4, 3, 8, 8});
  Tensor y = from_vector<int64_t>({0, 1, 2, 1}, {4});
  for (auto [mix, cut] : {std::pair<double, double>{0.8, 0.0}, {0.0, 1.0}, {0.8, 1.0}}) {
    auto r = data::mix_batch(x, y, 3, mix, cut, 0.1, g);
    REQUIRE(r.input.sizes() == x.sizes());
    auto rows = sum(r.soft_target, {1}).to_vector<float>();
    for (float v : rows) REQUIRE(std::abs(v - 1.f) < 1e-5f);
  }
  auto plain = data::mix_batch(x, y, 3, 0, 0, 0.0, g);
  REQUIRE(plain.soft_target.to_vector<float>()[0] == 1.f);
  REQUIRE_THROWS_WITH(data::mix_batch(x, from_vector<int64_t>({0, 1, 5, 1}, {4}), 3, 0, 0, 0, g),
                      Catch::Contains("label 5 out of range"));
}

TEST_CASE("the ImageNet samples load with classes in sorted wnid order", "[data]") {
  std::string shared = test::shared_data_dir();
  if (shared.empty()) return test::skip(test::no_shared_data("the ImageNet sample check"));
  data::ImageFolderDataset ds(shared + "/imagenet_samples", "val");
  REQUIRE(ds.classes().size() == 100);
  REQUIRE(std::is_sorted(ds.classes().begin(), ds.classes().end()));
  REQUIRE(ds.size() >= 100);
  // The class index of a sample is the position of its folder among the sorted wnids.
  for (int64_t i : {int64_t(0), ds.size() / 2, ds.size() - 1}) {
    data::Sample s = ds.load(i);
    REQUIRE(s.input.dim() == 3);
    REQUIRE(s.input.size(0) == 3);
    const std::string wnid = fs::path(s.id).parent_path().filename().string();
    REQUIRE(ds.classes()[s.target.item<int64_t>()] == wnid);
  }
  REQUIRE_THROWS_WITH(data::ImageFolderDataset(shared + "/imagenet_samples", "train"),
                      Catch::Contains("imagenet_samples/train"));
}

namespace {
// An ImageNet-layout folder of two classes: a smooth RGB photo-like PNG (so resampling matters)
// and a gray one (replicated to RGB).
std::string make_image_folder(const std::string& name) {
  fs::path root = fs::temp_directory_path() / name;
  fs::remove_all(root);
  fs::create_directories(root / "val/n001");
  fs::create_directories(root / "val/n002");
  Image rgb(61, 83, 3), gray(40, 37, 1);
  for (int64_t y = 0; y < rgb.height; ++y)
    for (int64_t x = 0; x < rgb.width; ++x)
      for (int64_t c = 0; c < 3; ++c)
        rgb.data[(y * rgb.width + x) * 3 + c] = static_cast<uint8_t>((x * 3 + y * 5 + c * 70 + (x * y) % 17) % 256);
  for (size_t i = 0; i < gray.data.size(); ++i) gray.data[i] = static_cast<uint8_t>((i * 37) % 256);
  encode_png((root / "val/n001/a.png").string(), rgb);
  encode_png((root / "val/n002/b.png").string(), gray);
  return root.string();
}
}  // namespace

TEST_CASE("8-bit samples: loading, flip and normalize give the float path's values", "[data]") {
  const std::string root = make_image_folder("evit_folder8");
  data::ImageFolderDataset floats(root, "val"), bytes(root, "val");
  bytes.set_eight_bit(true);
  for (int64_t i = 0; i < floats.size(); ++i) {
    const data::Sample f = floats.load(i), b = bytes.load(i);
    REQUIRE(is_hwc_u8_rgb(b.input));
    REQUIRE(b.input.sizes() == Shape{f.input.size(1), f.input.size(2), 3});
    // Gray files are replicated to three channels on both paths.
    REQUIRE(test::bitwise_equal(hwc_u8_to_chw_float(b.input), f.input));
    REQUIRE(test::bitwise_equal(b.target, f.target));
    for (uint64_t seed = 0; seed < 4; ++seed) {  // flipped or not, the same draw on both paths
      data::Sample fs = f, bs = b;
      Generator g1(seed), g2(seed);
      data::horizontal_flip()(fs, g1);
      data::horizontal_flip()(bs, g2);
      REQUIRE(is_hwc_u8_rgb(bs.input));
      REQUIRE(test::bitwise_equal(hwc_u8_to_chw_float(bs.input), fs.input));
      data::normalize()(fs, g1);
      data::normalize()(bs, g2);
      REQUIRE(bs.input.dtype() == DType::f32);
      REQUIRE(test::bitwise_equal(bs.input, fs.input));
    }
  }
  // A sample no transform converted is converted when the batch is formed.
  Generator g(0);
  data::Batch batch = data::collate({bytes.get(0, g)});
  REQUIRE(test::bitwise_equal(batch.input, unsqueeze(floats.load(0).input, 0)));
}

TEST_CASE("load_rgb and load_rgb_u8 drop alpha and replicate gray the same way", "[data]") {
  const fs::path dir = fs::temp_directory_path() / "evit_load_rgb";
  fs::create_directories(dir);
  for (int64_t channels : {1, 2, 4}) {
    Image img(3, 5, channels);
    for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = static_cast<uint8_t>(37 * i + 11);
    const std::string path = (dir / ("c" + std::to_string(channels) + ".png")).string();
    encode_png(path, img);
    const Tensor f = data::load_rgb(path), b = data::load_rgb_u8(path);
    REQUIRE(f.sizes() == Shape{3, 3, 5});
    REQUIRE(b.sizes() == Shape{3, 5, 3});
    REQUIRE(test::bitwise_equal(hwc_u8_to_chw_float(b), f));
    for (int64_t y = 0; y < 3; ++y)
      for (int64_t x = 0; x < 5; ++x)
        for (int64_t c = 0; c < 3; ++c)  // gray (+alpha): channel 0 everywhere; RGBA: its RGB
          REQUIRE(b.data_ptr<uint8_t>()[(y * 5 + x) * 3 + c] == img.at(y, x, channels < 3 ? 0 : c));
  }
  fs::remove_all(dir);
}

TEST_CASE("8-bit random_resized_crop is Pillow's bicubic resize of the drawn crop", "[data]") {
  const std::string root = make_image_folder("evit_folder8_crop");
  data::ImageFolderDataset bytes(root, "val");
  bytes.set_eight_bit(true);
  const data::Sample raw = bytes.load(0);
  const int64_t H = raw.input.size(0), W = raw.input.size(1);
  int64_t resized_down = 0, resized_up = 0;
  for (uint64_t seed = 0; seed < 12; ++seed) {
    Generator g_box(seed), g(seed);
    const data::CropBox box = data::random_resized_crop_box(H, W, g_box);
    REQUIRE(box.h >= 1);
    REQUIRE(box.w >= 1);
    REQUIRE(box.y0 + box.h <= H);
    REQUIRE(box.x0 + box.w <= W);
    const int64_t size = seed % 2 ? 32 : 48;
    data::Sample s = raw;
    data::random_resized_crop(size)(s, g);
    REQUIRE(is_hwc_u8_rgb(s.input));
    REQUIRE(s.input.sizes() == Shape{size, size, 3});
    const Tensor crop = slice(slice(raw.input, 0, box.y0, box.y0 + box.h), 1, box.x0, box.x0 + box.w).contiguous();
    const Image expected = data::resize_bicubic_pil(hwc_u8_to_image(crop), size, size);
    REQUIRE(test::bitwise_equal(s.input, image_to_hwc_u8(expected)));
    // The generator advanced exactly as the box draw did (later transforms see the same stream).
    REQUIRE(g.next_u64() == g_box.next_u64());
    (box.h > size ? resized_down : resized_up) += 1;
  }
  REQUIRE(resized_down > 0);  // both shrinking (antialiased) and enlarging crops were checked
  REQUIRE(resized_up > 0);
}

namespace {
// A dataset of n scalar samples (the index, plus a random draw of its transform's generator) that
// counts its loads.
class CountingDataset : public data::Dataset {
 public:
  explicit CountingDataset(int64_t n) : n_(n) {}
  int64_t size() const override { return n_; }
  data::Sample load(int64_t index) const override {
    ++loads;
    data::Sample s;
    s.input = full({1}, static_cast<double>(index));
    s.target = full({}, static_cast<double>(index), DType::i64);
    s.id = std::to_string(index);
    return s;
  }
  data::Sample get(int64_t index, Generator& rng) const override {
    data::Sample s = load(index);
    s.input = add(s.input, rng.uniform_double());  // the (seed, epoch, index) generator's draw
    return s;
  }
  std::string describe() const override { return "counting dataset"; }
  mutable std::atomic<int64_t> loads{0};

 private:
  int64_t n_;
};
}  // namespace

TEST_CASE("the loader prefetches across epoch boundaries and keeps the batches of every epoch", "[data]") {
  auto ds = std::make_shared<CountingDataset>(7);  // 3 batches of 2, the last dropped
  data::LoaderOptions o;
  o.batch_size = 2;
  o.drop_last = true;
  o.seed = 9;
  auto epochs = [&](int workers, bool resume_mid_epoch) {
    o.workers = workers;
    data::DataLoader loader(ds, o);
    std::vector<std::vector<std::string>> ids;
    std::vector<Tensor> inputs;
    for (int64_t e = 0; e < 4; ++e) {
      loader.start_epoch(e, resume_mid_epoch && e == 2 ? 1 : 0);
      data::Batch b;
      while (loader.next(b)) ids.push_back(b.ids), inputs.push_back(b.input);
    }
    return std::make_pair(ids, inputs);
  };
  const auto want = epochs(0, false);
  REQUIRE(want.first.size() == 12);
  for (int workers : {1, 3}) {
    INFO(workers << " workers");
    const auto got = epochs(workers, false);
    REQUIRE(got.first == want.first);
    for (size_t i = 0; i < got.second.size(); ++i) REQUIRE(test::bitwise_equal(got.second[i], want.second[i]));
    // A mid-epoch start restarts the stream and gives that epoch's remaining batches.
    const auto resumed = epochs(workers, true);
    REQUIRE(resumed.first.size() == 11);
    std::vector<std::vector<std::string>> expected = want.first;
    expected.erase(expected.begin() + 6);  // epoch 2's first batch is skipped
    REQUIRE(resumed.first == expected);
  }
  // With the whole of epoch 0 consumed, the workers go on loading epoch 1 before start_epoch(1).
  o.workers = 2;
  ds->loads = 0;
  data::DataLoader loader(ds, o);
  loader.start_epoch(0);
  data::Batch b;
  while (loader.next(b)) {
  }
  for (int i = 0; i < 2000 && ds->loads < 12; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(ds->loads == 12);  // epochs 0 and 1, and no further: at most one epoch ahead
  loader.start_epoch(1);
  std::vector<std::vector<std::string>> epoch1;
  while (loader.next(b)) epoch1.push_back(b.ids);
  REQUIRE(epoch1 == std::vector<std::vector<std::string>>(want.first.begin() + 3, want.first.begin() + 6));
}
