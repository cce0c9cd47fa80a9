// RandAugment (data/rand_augment.h): every op against PIL through the calls timm makes
// (tools/golden/gen_rand_augment.py), the policy string parser, and the policy's draws.
#include <cmath>
#include <set>

#include "data/rand_augment.h"
#include "tests/support/test_util.h"

using namespace evit;
using data::augment::Op;
using data::augment::Resample;

namespace {

struct Diff {
  int max = 0;
  int64_t count = 0;  // values that differ at all
};

Diff compare_u8(const Tensor& a, const Tensor& b) {
  REQUIRE(a.dtype() == DType::u8);
  REQUIRE(b.dtype() == DType::u8);
  REQUIRE(a.shape() == b.shape());
  Tensor ca = a.contiguous(), cb = b.contiguous();
  const uint8_t* p = ca.data_ptr<uint8_t>();
  const uint8_t* q = cb.data_ptr<uint8_t>();
  Diff d;
  for (int64_t i = 0; i < ca.numel(); ++i) {
    const int e = std::abs(static_cast<int>(p[i]) - static_cast<int>(q[i]));
    d.max = std::max(d.max, e);
    d.count += e != 0;
  }
  return d;
}

double scalar(const std::string& key) {
  return test::golden_tensor("rand_augment", key).to(DType::f64).contiguous().data_ptr<double>()[0];
}

// The largest |PIL - ours| allowed per op. The point ops are integer lookup tables and Brightness
// is a single float product, so they must be exact. Color / Contrast / Sharpness blend in float
// (and Sharpness filters in float) and the geometric ops interpolate in double: we follow PIL's
// arithmetic order and match it bit for bit here (GCC 12, x86-64, contraction off), but another
// compiler may round one of those operations differently, so they are allowed one level — on at
// most 1% of the values, which a systematic slip (rounding where PIL truncates) would exceed.
int tolerance(Op op) {
  switch (op) {
    case Op::Color: case Op::ColorIncreasing: case Op::Contrast: case Op::ContrastIncreasing:
    case Op::Sharpness: case Op::SharpnessIncreasing: case Op::Rotate: case Op::ShearX: case Op::ShearY:
    case Op::TranslateXRel: case Op::TranslateYRel:
      return 1;
    default:
      return 0;
  }
}

data::Sample image_sample(uint64_t seed, int64_t h = 30, int64_t w = 41) {
  data::Sample s;
  Generator g(seed);
  s.input = rand({3, h, w}, DType::f32, &g);
  s.id = "synthetic";
  return s;
}

}  // namespace

TEST_CASE("every RandAugment op matches PIL as timm calls it, at two magnitudes", "[randaug]") {
  const Tensor x = test::golden_tensor("rand_augment", "all.input");
  REQUIRE(x.dtype() == DType::u8);
  REQUIRE(x.shape() == Shape{29, 37, 3});
  const auto& g = test::golden("rand_augment");
  std::set<Op> seen;
  int cases = 0;
  for (const auto& [key, t] : g) {
    const std::string suffix = ".y";
    if (key.size() < suffix.size() || key.compare(key.size() - 2, 2, suffix) != 0) continue;
    const std::string name = key.substr(0, key.size() - 2);  // "<Op>_<k>[_bilinear]"
    const std::string op_text = name.substr(0, name.find('_'));
    const Op op = data::augment::op_from_name(op_text);
    const double m = scalar(name + ".magnitude");
    const bool negate = scalar(name + ".negate") != 0;
    const Resample r = g.count(name + ".resample") && scalar(name + ".resample") == 0 ? Resample::bilinear
                                                                                      : Resample::bicubic;
    INFO("case " << name << " (m " << m << (negate ? ", negative sign" : "") << ")");
    // timm's magnitude -> argument mapping.
    CHECK(data::augment::op_argument(op, m, negate) == Approx(scalar(name + ".arg")).margin(1e-12));
    const Tensor y = data::augment::apply_op(x, op, m, negate, r);
    const Diff d = compare_u8(y, t);
    INFO("max |ours - PIL| = " << d.max << " over " << d.count << " of " << y.numel() << " values");
    CHECK(d.max <= tolerance(op));
    CHECK(d.count <= y.numel() / 100);
    // Each case must change the image, or it would not test the op.
    CHECK(compare_u8(y, x).max > 0);
    seen.insert(op);
    ++cases;
  }
  CHECK(seen.size() == 21);  // both timm op sets
  CHECK(cases == 2 * 21 + 2 * 5);  // two magnitudes each, geometric ops also bilinear
}

TEST_CASE("RandAugment ops: argument edge cases behave like timm and PIL", "[randaug]") {
  const Tensor x = test::golden_tensor("rand_augment", "all.input");
  using namespace data::augment;
  // The "increasing" ranges: posterize keeps 4 bits at m 0 and none at m 10; solarize's threshold
  // goes from 256 (nothing inverted) to 0 (everything inverted).
  CHECK(op_argument(Op::PosterizeIncreasing, 0, false) == 4);
  CHECK(op_argument(Op::PosterizeIncreasing, 10, false) == 0);
  CHECK(op_argument(Op::SolarizeIncreasing, 0, false) == 256);
  CHECK(op_argument(Op::SolarizeIncreasing, 10, false) == 0);
  CHECK(op_argument(Op::ColorIncreasing, 10, true) == Approx(0.1));
  CHECK(op_argument(Op::Rotate, 10, true) == Approx(-30));
  CHECK(compare_u8(solarize(x, 256), x).max == 0);
  CHECK(compare_u8(solarize(x, 0), invert(x)).max == 0);
  CHECK(compare_u8(posterize(x, 8), x).max == 0);
  CHECK(compare_u8(posterize(x, 0), zeros_like(x)).max == 0);
  CHECK(compare_u8(rotate(x, 0, Resample::bicubic), x).max == 0);
  CHECK(compare_u8(rotate(x, 360, Resample::bicubic), x).max == 0);
  // Exactly half-turn: every sample lands on a pixel centre, so bicubic reproduces pixels.
  Tensor r180 = rotate(x, 180, Resample::bicubic).contiguous();
  const int64_t h = x.size(0), w = x.size(1);
  CHECK(r180.data_ptr<uint8_t>()[0] == x.contiguous().data_ptr<uint8_t>()[((h - 1) * w + (w - 1)) * 3]);
  // A full-width translation leaves only the fill colour.
  Tensor gone = translate_x(x, static_cast<double>(w), Resample::bicubic).contiguous();
  for (int c = 0; c < 3; ++c) CHECK(gone.data_ptr<uint8_t>()[(5 * w + 7) * 3 + c] == kMeanFill[c]);
  CHECK_THROWS_WITH(invert(zeros({4, 4}, DType::u8)), Catch::Contains("augment::invert") && Catch::Contains("[H,W,3]"));
}

TEST_CASE("the RandAugment string parser reads timm's sections and names the key on errors", "[randaug]") {
  auto c = data::parse_rand_augment("rand-n2-m5-mstd1.0-inc1");
  CHECK(c.n == 2);
  CHECK(c.m == 5);
  CHECK(c.mstd == 1.0);
  CHECK(c.increasing);
  CHECK(c.mmax == 10);
  c = data::parse_rand_augment("rand-m9-n3");
  CHECK(c.n == 3);
  CHECK(c.m == 9);
  CHECK(c.mstd == 0);
  CHECK_FALSE(c.increasing);
  c = data::parse_rand_augment("rand");  // timm's defaults
  CHECK(c.n == 2);
  CHECK(c.m == 10);
  c = data::parse_rand_augment("rand-mstd101-mmax20-m12-inc0");
  CHECK(std::isinf(c.mstd));
  CHECK(c.mmax == 20);
  CHECK(c.m == 12);
  CHECK_FALSE(c.increasing);

  const std::string key = "config.train.rand_augment";
  struct Bad {
    const char* spec;
    const char* mentions;
  };
  for (const Bad& b : {Bad{"", "must start with \"rand\""}, Bad{"augmix-m5", "must start with \"rand\""},
                       Bad{"randn2", "must start with \"rand\""}, Bad{"rand-n2.5", "whole number"},
                       Bad{"rand-x3", "unknown section 'x3'"}, Bad{"rand-m", "section 'm'"},
                       Bad{"rand-m5x", "section 'm5x'"}, Bad{"rand--n2", "section ''"},
                       Bad{"rand-w0", "'w'"}, Bad{"rand-inc2", "inc must be 0 or 1"},
                       Bad{"rand-mmax0", "mmax must be > 0"}, Bad{"rand-7", "section '7'"}}) {
    INFO("spec '" << b.spec << "'");
    CHECK_THROWS_WITH(data::parse_rand_augment(b.spec, key),
                      Catch::Contains(key) && Catch::Contains(b.mentions) && Catch::Contains(std::string("'") + b.spec + "'"));
  }
}

TEST_CASE("RandAugment draws n ops uniformly, each applied with probability 0.5", "[randaug]") {
  data::RandAugmentConfig cfg = data::parse_rand_augment("rand-n2-m5-mstd1.0-inc1");
  const int images = 6000;
  std::map<Op, int> counts;
  int64_t steps = 0, applied = 0, negated = 0;
  double sum = 0, sum2 = 0;
  for (int i = 0; i < images; ++i) {
    Generator g = data::sample_generator(11, 0, i);
    const auto s = data::sample_rand_augment(cfg, g);
    REQUIRE(s.size() == 2);
    for (const auto& st : s) {
      ++steps, ++counts[st.op];
      if (!st.applied) continue;
      ++applied, negated += st.negate;
      REQUIRE(st.magnitude >= 0);
      REQUIRE(st.magnitude <= 10);
      sum += st.magnitude, sum2 += st.magnitude * st.magnitude;
    }
  }
  // 12000 steps: binomial sd of the applied fraction ~0.0046; allow ~4.5 sd.
  CHECK(static_cast<double>(applied) / steps == Approx(0.5).margin(0.02));
  CHECK(static_cast<double>(negated) / applied == Approx(0.5).margin(0.03));
  // Only the increasing set, each ~1/15 (expected 800, sd ~27).
  const auto& inc = data::augment::rand_ops(true);
  CHECK(counts.size() == 15);
  for (Op op : inc) {
    INFO(data::augment::op_name(op));
    CHECK(counts[op] > 680);
    CHECK(counts[op] < 920);
  }
  // The magnitude is N(5, 1) (clipping at 0 and 10 is 5 sd away).
  const double mean = sum / applied, sd = std::sqrt(sum2 / applied - mean * mean);
  CHECK(mean == Approx(5).margin(0.06));
  CHECK(sd == Approx(1).margin(0.05));

  // mstd 0: the magnitude is exactly m; a magnitude above 10 is clipped to mmax.
  cfg = data::parse_rand_augment("rand-n3-m13");
  for (int i = 0; i < 50; ++i) {
    Generator g = data::sample_generator(3, 1, i);
    for (const auto& st : data::sample_rand_augment(cfg, g))
      if (st.applied) REQUIRE(st.magnitude == 10);
  }
  // n 0: nothing.
  Generator g0(5);
  CHECK(data::sample_rand_augment(data::parse_rand_augment("rand-n0"), g0).empty());
}

TEST_CASE("the RandAugment transform is seeded, keeps the shape and stays on 8-bit levels", "[randaug]") {
  const data::Transform t = data::rand_augment(2, 9, 1.0);
  const data::Sample base = image_sample(17);
  auto run = [&](uint64_t seed) {
    data::Sample s = base;
    Generator g = data::sample_generator(seed, 0, 0);
    t(s, g);
    return s.input;
  };
  const Tensor a = run(1), b = run(1);
  CHECK(test::bitwise_equal(a, b));
  int differing = 0;
  for (uint64_t seed = 2; seed < 10; ++seed) differing += !test::bitwise_equal(a, run(seed));
  CHECK(differing >= 6);  // two seeds agree only if both skip every op (or draw the same)
  for (uint64_t seed = 1; seed < 20; ++seed) {
    const Tensor y = run(seed).contiguous();
    REQUIRE(y.dtype() == DType::f32);
    REQUIRE(y.shape() == base.input.shape());
    const float* p = y.data_ptr<float>();
    for (int64_t i = 0; i < y.numel(); ++i) {
      const double v = p[i] * 255.0;
      REQUIRE(v >= 0);
      REQUIRE(v <= 255);
      REQUIRE(std::abs(v - std::round(v)) < 1e-3);
    }
  }
  // The 8-bit round trip is exact for 8-bit input.
  const Tensor u = data::augment::to_u8_hwc(base.input);
  CHECK(test::bitwise_equal(data::augment::to_u8_hwc(data::augment::from_u8_hwc(u)), u));
  // An 8-bit sample (data/dataset.h) is augmented the same way and stays 8-bit.
  int eight_bit_changed = 0;
  for (uint64_t seed = 1; seed < 20; ++seed) {
    data::Sample s = base;
    s.input = u;
    Generator g = data::sample_generator(seed, 0, 0);
    t(s, g);
    REQUIRE(is_hwc_u8_rgb(s.input));
    REQUIRE(test::bitwise_equal(hwc_u8_to_chw_float(s.input), run(seed)));
    eight_bit_changed += !test::bitwise_equal(s.input, u);
  }
  CHECK(eight_bit_changed >= 10);
  data::Sample bad;
  bad.input = zeros({1, 4, 4});
  bad.id = "gray.png";
  Generator g(1);
  CHECK_THROWS_WITH(t(bad, g), Catch::Contains("rand_augment") && Catch::Contains("gray.png"));
}
