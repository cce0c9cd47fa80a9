// Segmentation confusion counts / mIoU and top-k accuracy against values worked out
// by hand in the comments.
#include <cmath>

#include "core/tensor.h"
#include "tests/support/test_util.h"
#include "train/metrics.h"

using namespace evit;
using train::SegConfusion;
using train::TopKAccuracy;

TEST_CASE("SegConfusion counts I, P, G over a val set with an ignore index", "[metrics]") {
  // 3 classes, ignore 255. Image 1 (2x4):
  //   label 0 0 1 1      pred 0 1 1 1
  //         2 2 255 255       2 0 0 2
  // counted pixels (label != 255): 6.
  //   class 0: G = 2 (pos 0, 1), P = 2 (pos 0, 5; the pred 0 at pos 6 is ignored), I = 1
  //   class 1: G = 2, P = 3 (pos 1, 2, 3), I = 2
  //   class 2: G = 2, P = 1 (pos 4), I = 1; pred 2 at pos 7 is on an ignored pixel.
  SegConfusion m(3, 255);
  Tensor l1 = from_vector<int64_t>({0, 0, 1, 1, 2, 2, 255, 255}, {2, 4});
  Tensor p1 = from_vector<int64_t>({0, 1, 1, 1, 2, 0, 0, 2}, {2, 4});
  m.update(p1, l1);
  REQUIRE(m.intersection() == std::vector<int64_t>{1, 2, 1});
  REQUIRE(m.predicted() == std::vector<int64_t>{2, 3, 1});
  REQUIRE(m.ground_truth() == std::vector<int64_t>{2, 2, 2});
  // Image 2 (1x3), u8 data: label 2 2 0, pred 2 1 0 -> I = {1, 0, 1}, P = {1, 1, 1}, G = {1, 0, 2}.
  Tensor l2 = from_vector<uint8_t>({2, 2, 0}, {1, 3});
  Tensor p2 = from_vector<uint8_t>({2, 1, 0}, {1, 3});
  m.update(p2, l2);
  // Sums: I = {2, 2, 2}, P = {3, 4, 2}, G = {3, 2, 4}; U = P + G - I = {4, 4, 4}.
  REQUIRE(m.intersection() == std::vector<int64_t>{2, 2, 2});
  REQUIRE(m.union_counts() == std::vector<int64_t>{4, 4, 4});
  REQUIRE(m.counted_pixels() == 9);
  // IoU = {0.5, 0.5, 0.5}, mIoU = 50. Per-image averaging would give a different number:
  // image 1 alone: IoU = {1/3, 2/3, 1/3}; image 2 alone: {1/2, 0/1, 1/2} -> not 50.
  auto iou = m.iou();
  for (double v : iou) REQUIRE(v == Approx(0.5));
  REQUIRE(m.miou() == Approx(50.0));
  // Pixel accuracy: sum I / sum G = 6 / 9.
  REQUIRE(m.pixel_accuracy() == Approx(100.0 * 6.0 / 9.0));
}

TEST_CASE("SegConfusion: ignore -1, absent classes, merge and errors", "[metrics]") {
  // 4 classes, ignore -1: label 0 0 -1 1, pred 0 1 3 1. Class 3 is predicted only on the ignored
  // pixel and class 2 never occurs: U_2 = U_3 = 0 -> NaN IoU, left out of the mean.
  // I = {1, 1, 0, 0}, P = {1, 2, 0, 0}, G = {2, 1, 0, 0}, U = {2, 2, 0, 0};
  // IoU = {0.5, 0.5, -, -} -> mIoU = 50.
  SegConfusion m(4, -1);
  m.update(from_vector<int32_t>({0, 1, 3, 1}, {4}), from_vector<int32_t>({0, 0, -1, 1}, {4}));
  auto iou = m.iou();
  REQUIRE(iou[0] == Approx(0.5));
  REQUIRE(iou[1] == Approx(0.5));
  REQUIRE(std::isnan(iou[2]));
  REQUIRE(std::isnan(iou[3]));
  REQUIRE(m.miou() == Approx(50.0));

  // Merging two halves equals one pass over the whole.
  SegConfusion a(4, -1), b(4, -1), whole(4, -1);
  Tensor la = from_vector<int64_t>({0, 1, 2, 3, -1}, {5}), pa = from_vector<int64_t>({0, 2, 2, 3, 1}, {5});
  Tensor lb = from_vector<int64_t>({3, 3, 1}, {3}), pb = from_vector<int64_t>({3, 0, 1}, {3});
  a.update(pa, la);
  b.update(pb, lb);
  a.merge(b);
  whole.update(pa, la);
  whole.update(pb, lb);
  REQUIRE(a.intersection() == whole.intersection());
  REQUIRE(a.predicted() == whole.predicted());
  REQUIRE(a.ground_truth() == whole.ground_truth());

  REQUIRE(std::isnan(SegConfusion(3).miou()));
  REQUIRE_THROWS_WITH(m.update(from_vector<int64_t>({0}, {1}), from_vector<int64_t>({7}, {1})),
                      Catch::Contains("label value 7"));
  REQUIRE_THROWS_WITH(m.update(from_vector<int64_t>({9}, {1}), from_vector<int64_t>({0}, {1})),
                      Catch::Contains("prediction value 9"));
  // An out-of-range prediction on an ignored pixel is not counted and not an error.
  m.update(from_vector<int64_t>({9}, {1}), from_vector<int64_t>({-1}, {1}));
  REQUIRE_THROWS_WITH(m.update(zeros({2}, DType::f32), from_vector<int64_t>({0, 0}, {2})),
                      Catch::Contains("integer tensor"));
  REQUIRE_THROWS_WITH(m.update(from_vector<int64_t>({0, 0}, {2}), from_vector<int64_t>({0}, {1})),
                      Catch::Contains("differ in shape"));
  REQUIRE_THROWS_WITH(SegConfusion(19, 3), Catch::Contains("ignore_index 3"));
}

TEST_CASE("SegConfusion on a large image does not depend on chunking", "[metrics]") {
  // 200k pixels span several parallel chunks; compare with a serial count.
  const int64_t n = 200003, C = 5;
  Tensor label = randint(-1, C, {n}), pred = randint(0, C, {n});
  SegConfusion m(C, -1);
  m.update(pred, label);
  std::vector<int64_t> I(C), P(C), G(C);
  auto lv = label.to_vector<int64_t>(), pv = pred.to_vector<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    if (lv[i] < 0) continue;
    ++G[lv[i]];
    ++P[pv[i]];
    if (pv[i] == lv[i]) ++I[lv[i]];
  }
  REQUIRE(m.intersection() == I);
  REQUIRE(m.predicted() == P);
  REQUIRE(m.ground_truth() == G);
}

TEST_CASE("TopKAccuracy top-1 / top-5 with ties and NaN", "[metrics]") {
  // 6 classes, 4 samples.
  // s0: target 2, scores 0 1 5 2 3 4       -> rank 0: top-1 and top-5 correct.
  // s1: target 0, scores 0 1 2 3 4 5       -> rank 5 (all others larger): wrong for both.
  // s2: target 3, scores 9 8 7 6 1 0       -> rank 3: top-5 only.
  // s3: target 4, scores 1 1 1 1 1 1 (ties)-> smaller indices 0..3 rank first: rank 4, top-5 only.
  Tensor s = from_vector<double>({0, 1, 5, 2, 3, 4,  //
                                  0, 1, 2, 3, 4, 5,  //
                                  9, 8, 7, 6, 1, 0,  //
                                  1, 1, 1, 1, 1, 1},
                                 {4, 6});
  TopKAccuracy acc;
  acc.update(s, from_vector<int64_t>({2, 0, 3, 4}, {4}));
  REQUIRE(acc.count() == 4);
  REQUIRE(acc.correct_top1() == 1);
  REQUIRE(acc.correct_top5() == 3);
  REQUIRE(acc.top1() == Approx(25.0));
  REQUIRE(acc.top5() == Approx(75.0));
  // A second batch (f32): target 1 wins top-1; a NaN row counts as wrong.
  // Totals: 6 samples, top-1 2/6, top-5 4/6.
  Tensor s2 = from_vector<float>({0.1f, 0.9f, 0.0f, NAN, 0.5f, 0.2f}, {2, 3});
  acc.update(s2, from_vector<int32_t>({1, 1}, {2}));
  REQUIRE(acc.count() == 6);
  REQUIRE(acc.top1() == Approx(100.0 * 2 / 6));
  REQUIRE(acc.top5() == Approx(100.0 * 4 / 6));
  // Bad targets name the value / shape.
  REQUIRE_THROWS_WITH(acc.update(s2, from_vector<int64_t>({1, 3}, {2})), Catch::Contains("target 3"));
  REQUIRE_THROWS_WITH(acc.update(s2, from_vector<int64_t>({1}, {1})), Catch::Contains("target must be [N]"));
  REQUIRE(std::isnan(TopKAccuracy().top1()));
}
