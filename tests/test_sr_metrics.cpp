// MATLAB-compatible imresize, BT.601 luma, PSNR/SSIM and the published bicubic SR baselines.
// Reference values: tools/golden/gen_imresize.py (numpy port of MATLAB's imresize, numpy
// PSNR/SSIM); the Set5/Set14 numbers are the published bicubic tables.
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "data/image.h"
#include "ops/resize/imresize.h"
#include "ops/shape.h"
#include "tests/support/test_util.h"
#include "train/sr_metrics.h"

using namespace evit;
namespace fs = std::filesystem;

TEST_CASE("imresize matches the MATLAB algorithm (down x2/x3/x4, up, sizes, batches)", "[srmetrics]") {
  const TensorMap& g = test::golden("imresize");
  int cases = 0;
  for (const auto& [key, t] : g) {
    if (key.size() < 2 || key.substr(key.size() - 2) != ".x" || key.rfind("rgb_to_y", 0) == 0 ||
        key.rfind("metrics", 0) == 0)
      continue;
    const std::string name = key.substr(0, key.size() - 2);
    INFO(name);
    const double scale = g.at(name + ".scale").item<double>();
    const auto size = g.at(name + ".size").to_vector<int64_t>();
    const Tensor& want = g.at(name + ".y");
    Tensor y = scale > 0 ? imresize(t, scale) : imresize(t, size[0], size[1]);
    REQUIRE(y.sizes() == want.sizes());
    EVIT_REQUIRE_CLOSE(y, want, 1e-12, 1e-10);
    // f32 input: same algorithm, f64 accumulation, rounded once at the end.
    Tensor y32 = scale > 0 ? imresize(t.to(DType::f32), scale)
                           : imresize(t.to(DType::f32), size[0], size[1]);
    CHECK(y32.dtype() == DType::f32);
    EVIT_REQUIRE_CLOSE(y32.to(DType::f64), want, 1e-5, 1e-4);
    ++cases;
  }
  CHECK(cases == 14);
}

TEST_CASE("imresize: invariants and errors", "[srmetrics]") {
  // Normalised weights: a constant image stays constant in every direction.
  for (double s : {0.25, 1.0 / 3.0, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 4.0}) {
    Tensor c = full({2, 9, 14}, 42.5, DType::f64);
    Tensor y = imresize(c, s);
    INFO("scale " << s);
    CHECK(y.size(1) == static_cast<int64_t>(std::ceil(9 * s)));
    CHECK(y.size(2) == static_cast<int64_t>(std::ceil(14 * s)));
    EVIT_REQUIRE_CLOSE(y, full(y.sizes(), 42.5, DType::f64), 0, 1e-11);
  }
  for (int64_t in : {1, 2, 5, 17})
    for (int64_t out : {1, 3, 8, 40}) {
      ResizeWeights w = imresize_weights(in, out, double(out) / double(in));
      for (int64_t i = 0; i < out; ++i) {
        double s = 0;
        for (int64_t k = 0; k < w.taps; ++k) {
          s += w.weight[i * w.taps + k];
          REQUIRE(w.index[i * w.taps + k] >= 0);
          REQUIRE(w.index[i * w.taps + k] < in);
        }
        REQUIRE(std::fabs(s - 1.0) < 1e-12);
      }
    }
  // Thread count does not change the result.
  Tensor x = rand({3, 40, 52}, DType::f64);
  set_num_threads(1);
  Tensor a = imresize(x, 0.25);
  set_num_threads(2);
  Tensor b = imresize(x, 0.25);
  CHECK(test::bitwise_equal(a, b));
  REQUIRE_THROWS_WITH(imresize(zeros({4}), 2.0), Catch::Contains("imresize"));
  REQUIRE_THROWS_WITH(imresize(zeros({4, 4}, DType::i64), 2.0), Catch::Contains("f32 or f64"));
  REQUIRE_THROWS_WITH(imresize(zeros({4, 4}), -1.0), Catch::Contains("scale"));
  REQUIRE_THROWS_WITH(imresize(zeros({4, 4}), 0, 3), Catch::Contains("positive"));
}

TEST_CASE("rgb_to_y (BT.601, 0..255 scale)", "[srmetrics]") {
  Tensor x = test::golden_tensor("imresize", "rgb_to_y.x");
  EVIT_REQUIRE_CLOSE(rgb_to_y(x), test::golden_tensor("imresize", "rgb_to_y.y"), 1e-14, 1e-12);
  // Black and white map to the BT.601 limits 16 and 235.
  Tensor bw = rgb_to_y(from_vector<double>({0, 1, 0, 1, 0, 1}, {3, 1, 2}));
  CHECK(bw.to_vector<double>()[0] == Approx(16.0));
  CHECK(bw.to_vector<double>()[1] == Approx(235.0));
  Tensor batched = rgb_to_y(reshape(x, {1, 3, 4, 5}));
  CHECK(batched.sizes() == Shape{1, 4, 5});
  REQUIRE_THROWS_WITH(rgb_to_y(zeros({4, 2, 2})), Catch::Contains("[3,H,W]"));
}

TEST_CASE("psnr / ssim against numpy references", "[srmetrics]") {
  for (const char* name : {"metrics_b0", "metrics_b3"}) {
    INFO(name);
    const std::string n = name;
    Tensor a = test::golden_tensor("imresize", n + ".a");
    Tensor b = test::golden_tensor("imresize", n + ".b");
    const int64_t border = test::golden_tensor("imresize", n + ".border").item<int64_t>();
    CHECK(psnr(a, b, border) ==
          Approx(test::golden_tensor("imresize", n + ".psnr").item<double>()).epsilon(1e-12));
    CHECK(ssim(a, b, border) ==
          Approx(test::golden_tensor("imresize", n + ".ssim").item<double>()).epsilon(1e-10));
    CHECK(ssim(a, a, border) == Approx(1.0).epsilon(1e-12));
    CHECK(std::isinf(psnr(a, a, border)));
  }
  // A uniform error of 1 level: PSNR = 20 log10(255).
  Tensor z = zeros({16, 16}, DType::f64), o = ones({16, 16}, DType::f64);
  CHECK(psnr(z, o, 0) == Approx(20 * std::log10(255.0)));
  // Errors confined to the border do not count once it is cropped.
  Tensor e = zeros({16, 16}, DType::f64);
  e.data_ptr<double>()[0] = 200;
  CHECK(std::isinf(psnr(z, e, 1)));
  CHECK(std::isfinite(psnr(z, e, 0)));
  REQUIRE_THROWS_WITH(psnr(z, zeros({16, 15}, DType::f64), 0), Catch::Contains("shapes differ"));
  REQUIRE_THROWS_WITH(ssim(z, o, 3), Catch::Contains("11x11"));
  REQUIRE_THROWS_WITH(psnr(z, o, 8), Catch::Contains("border"));
}

namespace {

struct Expected {
  const char* set;
  int64_t scale;
  double psnr, ssim;          // published (Y-plane protocol, measured with the reference toolkit)
  double task_psnr, task_ssim;  // the classic table values quoted in the task
};

}  // namespace

TEST_CASE("bicubic baselines reproduce the published Set5 / Set14 numbers", "[srmetrics]") {
  const std::string root = test::shared_data_dir();
  if (root.empty()) return test::skip(test::no_shared_data("Set5/Set14 bicubic baselines"));
  const Expected table[] = {
      {"set5", 2, 33.66, 0.9299, 33.66, 0.9299},
      {"set5", 4, 28.42, 0.8104, 28.42, 0.8104},
      {"set14", 2, 30.23, 0.8687, 30.24, 0.8688},
      {"set14", 4, 26.00, 0.7019, 26.00, 0.7027},
  };
  for (const Expected& e : table) {
    std::vector<std::string> files;
    for (const auto& f : fs::directory_iterator(root + "/" + e.set + "/HR"))
      if (f.path().extension() == ".png") files.push_back(f.path().string());
    REQUIRE(files.size() == (std::string(e.set) == "set5" ? 5u : 14u));
    double p = 0, s = 0;
    for (const auto& f : files) {
      SrScore sc = bicubic_baseline_y(read_image(f), e.scale);
      p += sc.psnr;
      s += sc.ssim;
    }
    p /= double(files.size());
    s /= double(files.size());
    INFO(e.set << " x" << e.scale << ": PSNR " << p << " SSIM " << s);
    // The published values are given to 2 / 4 decimals: our mean must round to them.
    CHECK(std::fabs(p - e.psnr) <= 0.005);
    CHECK(std::fabs(s - e.ssim) <= 0.00005 + 1e-9);
    CHECK(std::fabs(p - e.task_psnr) <= 0.01);
    CHECK(std::fabs(s - e.task_ssim) <= 0.001);
  }
}

TEST_CASE("RGB protocol scores (model outputs)", "[srmetrics]") {
  Tensor hr = rand({3, 24, 20}, DType::f64);
  SrScore same = score_sr_rgb(hr, hr, 2);
  CHECK(std::isinf(same.psnr));
  CHECK(same.ssim == Approx(1.0));
  REQUIRE_THROWS_WITH(score_sr_rgb(hr, zeros({3, 24, 21}, DType::f64), 2),
                      Catch::Contains("shapes differ"));
  const std::string root = test::shared_data_dir();
  if (root.empty()) return test::skip(test::no_shared_data("RGB-protocol Set5 check"));
  // The RGB protocol reads Set5 x2 33.69 for bicubic.
  double p = 0;
  int n = 0;
  for (const auto& f : fs::directory_iterator(root + "/set5/HR")) {
    Image hr_img = modcrop(read_image(f.path().string()), 2);
    Tensor x = image_to_chw_float(hr_img, DType::f64);
    Tensor sr = imresize(imresize(x, 0.5), 2.0);
    p += score_sr_rgb(sr, x, 2).psnr;
    ++n;
  }
  CHECK(std::fabs(p / n - 33.69) <= 0.005);
}
