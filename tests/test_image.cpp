// Image codecs (PNG, JPEG), magic-byte dispatch, tensor conversions and the .npy reader.
// Reference data: tools/golden/gen_image.py (hand-made PNGs checked with PIL, PIL decodes of
// the shared codec samples, numpy-written .npy files).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/safetensors.h"
#include "data/image.h"
#include "data/npy.h"
#include "tests/support/test_util.h"

using namespace evit;
namespace fs = std::filesystem;

namespace {

std::string bytes_of(const Tensor& t) {
  return std::string(static_cast<const char*>(t.raw_data()), static_cast<size_t>(t.numel()));
}

// Every sample of `img` equals the golden [H,W,C] tensor (u8 or i32 for 16-bit).
void require_pixels(const Image& img, const Tensor& expected, const std::string& what) {
  INFO(what << ": decoded " << img.desc() << ", expected " << expected.desc());
  REQUIRE(expected.dim() == 3);
  REQUIRE(img.height == expected.size(0));
  REQUIRE(img.width == expected.size(1));
  REQUIRE(img.channels == expected.size(2));
  const auto want = expected.to_vector<int64_t>();
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < img.numel(); ++i) {
    const int64_t v = img.bit_depth == 16 ? img.samples16()[i] : img.samples8()[i];
    if (v != want[i]) {
      if (first < 0) first = i;
      ++bad;
    }
  }
  INFO("mismatching samples: " << bad << " (first at flat index " << first << ")");
  REQUIRE(bad == 0);
}

std::string temp_dir() {
  fs::path p = fs::temp_directory_path() / "evit_test_image";
  fs::create_directories(p);
  return p.string();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string golden_npy(const std::string& name) {
  return std::string(EVIT_GOLDEN_DIR) + "/npy/" + name + ".npy";
}

}  // namespace

TEST_CASE("png: every colour type, bit depth, palette, tRNS and interlacing", "[image]") {
  const TensorMap& g = test::golden("image");
  int cases = 0;
  for (const auto& [key, t] : g) {
    if (key.rfind("png_", 0) != 0 || key.size() < 6 || key.substr(key.size() - 6) != ".bytes")
      continue;
    const std::string name = key.substr(0, key.size() - 6);
    Image img = decode_png_bytes(bytes_of(t), name);
    const Tensor& expected = g.at(name + ".expected");
    // 16-bit cases are stored as i32 by the generator.
    CHECK(img.bit_depth == (expected.dtype() == DType::i32 ? 16 : 8));
    require_pixels(img, expected, name);
    // The same bytes go through the magic-byte dispatcher.
    Image again = decode_image_bytes(bytes_of(t), name);
    CHECK(again.data == img.data);
    ++cases;
  }
  CHECK(cases >= 45);
}

TEST_CASE("png: interlaced files decode like their non-interlaced twins", "[image]") {
  const TensorMap& g = test::golden("image");
  for (const char* n : {"rgb16", "pal2_trns", "gray1", "rgba8", "ga16"}) {
    const std::string a = std::string("png_") + n, b = a + "_i";
    Image plain = decode_png_bytes(bytes_of(g.at(a + ".bytes")), a);
    Image inter = decode_png_bytes(bytes_of(g.at(b + ".bytes")), b);
    INFO(n);
    CHECK(plain.desc() == inter.desc());
    CHECK(plain.data == inter.data);
  }
}

TEST_CASE("png: broken and truncated files are errors naming the source", "[image]") {
  const TensorMap& g = test::golden("image");
  for (const auto& [key, t] : g) {
    if (key.rfind("pngbad_", 0) != 0) continue;
    const std::string name = key.substr(0, key.find('.'));
    INFO(name);
    REQUIRE_THROWS_WITH(decode_png_bytes(bytes_of(t), name + ".png"),
                        Catch::Contains(name + ".png") && Catch::Contains("decode_png"));
  }
  // Truncation at every region of a valid file: signature, IHDR, IDAT, IEND.
  const std::string good = bytes_of(g.at("png_rgb8.bytes"));
  for (size_t cut : {size_t(0), size_t(5), size_t(8), size_t(20), size_t(40), good.size() / 2,
                     good.size() - 13, good.size() - 1}) {
    INFO("cut at " << cut);
    REQUIRE_THROWS_WITH(decode_png_bytes(good.substr(0, cut), "cut.png"),
                        Catch::Contains("cut.png"));
  }
  // A flipped bit inside IDAT breaks its CRC (critical chunk): an error, not a damaged image.
  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x10;
  REQUIRE_THROWS_WITH(decode_png_bytes(flipped, "flip.png"), Catch::Contains("flip.png"));
  // Files on disk: the path is named.
  const std::string path = temp_dir() + "/truncated.png";
  write_bytes(path, good.substr(0, good.size() / 2));
  REQUIRE_THROWS_WITH(decode_png(path), Catch::Contains(path));
  REQUIRE_THROWS_WITH(read_image(temp_dir() + "/does_not_exist.png"),
                      Catch::Contains("does_not_exist.png"));
  write_bytes(path, "GIF89a not an image");
  REQUIRE_THROWS_WITH(read_image(path), Catch::Contains(path) && Catch::Contains("neither"));
}

TEST_CASE("png: encode/decode round trip (gray, gray+alpha, RGB, RGBA), atomic write", "[image]") {
  const std::string dir = temp_dir();
  for (int64_t c = 1; c <= 4; ++c) {
    Tensor t = randint(0, 256, {17, 9, c}, DType::i64).to(DType::u8);
    Image img = hwc_u8_to_image(t);
    const std::string path = dir + "/rt" + std::to_string(c) + ".png";
    encode_png(path, img);
    CHECK_FALSE(fs::exists(path + ".tmp"));
    Image back = read_image(path);
    CHECK(back.channels == c);
    CHECK(back.bit_depth == 8);
    CHECK(test::bitwise_equal(image_to_hwc_u8(back), t));
  }
  Image sixteen(2, 2, 3, 16);
  REQUIRE_THROWS_WITH(encode_png(dir + "/x.png", sixteen), Catch::Contains("8-bit"));
  REQUIRE_THROWS_WITH(encode_png(dir + "/no_such_dir/x.png", Image(2, 2, 3)),
                      Catch::Contains("no_such_dir"));
}

TEST_CASE("image tensor conversions", "[image]") {
  Tensor t = randint(0, 256, {5, 7, 3}, DType::i64).to(DType::u8);
  Image img = hwc_u8_to_image(t);
  Tensor chw = image_to_chw_float(img, DType::f64);
  REQUIRE(chw.sizes() == Shape{3, 5, 7});
  const auto hwc = t.to_vector<int64_t>();
  const auto f = chw.to_vector<double>();
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t p = 0; p < 35; ++p) REQUIRE(f[c * 35 + p] == hwc[p * 3 + c] / 255.0);
  // Back to 8 bits exactly; out-of-range values clamp.
  Image back = chw_float_to_image(image_to_chw_float(img, DType::f32));
  CHECK(back.data == img.data);
  Image clamped = chw_float_to_image(from_vector<double>({-0.5, 0.5, 1.7, 0.2}, {1, 2, 2}));
  CHECK(std::vector<int>(clamped.data.begin(), clamped.data.end()) ==
        std::vector<int>{0, 128, 255, 51});
  // 16-bit samples scale by 65535 and round to 8 bits by /257.
  Image s(1, 3, 1, 16);
  s.samples16()[0] = 65535, s.samples16()[1] = 257 * 100 + 128, s.samples16()[2] = 257 * 100 + 129;
  CHECK(image_to_chw_float(s, DType::f64).to_vector<double>()[0] == 1.0);
  CHECK(image_to_hwc_u8(s).to_vector<int64_t>() == std::vector<int64_t>{255, 100, 101});
  REQUIRE_THROWS_WITH(chw_float_to_image(zeros({5, 2, 2})), Catch::Contains("channels"));
  REQUIRE_THROWS_WITH(Image(0, 3, 3), Catch::Contains("positive"));
}

TEST_CASE("shared codec samples: PNG and JPEG decodes match PIL", "[image]") {
  const std::string root = test::shared_data_dir();
  if (root.empty()) return test::skip(test::no_shared_data("codec sample checks"));
  const std::string dir = root + "/codec_samples";
  const TensorMap& g = test::golden("image");
  int checked = 0;
  for (const char* sub : {"pngsuite", "palette", "gray_and_alpha", "flower"}) {
    for (const auto& e : fs::directory_iterator(dir + "/" + sub)) {
      std::string fname = e.path().filename().string();
      std::string key = "shared_" + fname;
      for (char& ch : key)
        if (ch == '.') ch = '_';
      INFO(e.path().string());
      REQUIRE(g.count(key + ".shape"));
      Image img = read_image(e.path().string());
      const auto shape = g.at(key + ".shape").to_vector<int64_t>();
      REQUIRE(img.height == shape[0]);
      REQUIRE(img.width == shape[1]);
      REQUIRE(img.channels == shape[2]);
      REQUIRE(img.bit_depth == 8);
      if (g.count(key + ".pixels")) {
        require_pixels(img, g.at(key + ".pixels"), fname);
      } else {
        // Every 16th pixel, compared with PIL's decode (PIL uses libjpeg/libpng too: the
        // accurate IDCT and fancy upsampling give identical results).
        const Tensor& grid = g.at(key + ".grid16");
        const auto want = grid.to_vector<int64_t>();
        int64_t maxdiff = 0, k = 0;
        for (int64_t y = 0; y < img.height; y += 16)
          for (int64_t x = 0; x < img.width; x += 16)
            for (int64_t c = 0; c < img.channels; ++c, ++k)
              maxdiff = std::max<int64_t>(maxdiff, std::abs(int64_t(img.at(y, x, c)) - want[k]));
        REQUIRE(k == grid.numel());
        CHECK(maxdiff <= 1);
      }
      ++checked;
    }
  }
  CHECK(checked == 25);

  // JPEG variants against the PNG original: q85 loses ~1.1-1.6 levels on average (PIL measures
  // the same); ours must match PIL's mean absolute difference and stay within a few levels.
  Image ref = read_image(dir + "/flower/flower.png");
  REQUIRE(ref.channels == 3);
  int variants = 0;
  for (const auto& e : fs::directory_iterator(dir + "/flower")) {
    const std::string fname = e.path().filename().string();
    if (fname.rfind("flower.png.im_q85_", 0) != 0) continue;
    INFO(fname);
    Image jpg = decode_jpeg(e.path().string());
    REQUIRE(jpg.height == ref.height);
    REQUIRE(jpg.width == ref.width);
    double sum = 0;
    int64_t big = 0;
    for (int64_t p = 0; p < ref.height * ref.width; ++p) {
      const uint8_t* r = ref.samples8() + p * 3;
      for (int64_t c = 0; c < jpg.channels; ++c) {
        // The gray variant was made from a gray image: compare with BT.601 luma of the PNG.
        const double want = jpg.channels == 1
                                ? std::round(0.299 * r[0] + 0.587 * r[1] + 0.114 * r[2])
                                : r[c];
        const double d = std::fabs(jpg.samples8()[p * jpg.channels + c] - want);
        sum += d;
        big += d > 40;
      }
    }
    const double mad = sum / double(ref.height * ref.width * jpg.channels);
    const double pil_mad = test::golden_tensor("image", "shared_" + [&] {
                             std::string k = fname;
                             for (char& ch : k)
                               if (ch == '.') ch = '_';
                             return k;
                           }() + ".mad_vs_png").item<double>();
    CHECK(std::fabs(mad - pil_mad) < 0.01);
    CHECK(mad < (jpg.channels == 1 ? 4.0 : 2.0));
    CHECK(double(big) / double(ref.height * ref.width) < 1e-4);  // no broken blocks
    ++variants;
  }
  CHECK(variants == 8);

  // The small crops: non-interleaved / partially interleaved scans decode to the same pixels
  // as each other (same quantisation, only the scan layout differs).
  for (const char* sub : {"420", "444"}) {
    const std::string base = dir + "/flower/flower_small.q85_" + sub;
    Image a = decode_jpeg(base + "_non_interleaved.jpg");
    Image b = decode_jpeg(base + "_partially_interleaved.jpg");
    CHECK(a.data == b.data);
  }

  // The deliberately truncated JPEG: an error naming the file, never a half-gray image.
  const std::string bad = dir + "/broken/truncated.jpg";
  REQUIRE_THROWS_WITH(read_image(bad), Catch::Contains(bad) && Catch::Contains("decode_jpeg"));
}

TEST_CASE("jpeg: truncated and corrupt streams are errors", "[image]") {
  // A JPEG made here: encode is not part of evit, so cut a shared file when present, otherwise
  // check the structural errors only.
  REQUIRE_THROWS_WITH(decode_jpeg_bytes(std::string("\xff\xd8\xff", 3), "tiny.jpg"),
                      Catch::Contains("tiny.jpg"));
  REQUIRE_THROWS_WITH(decode_jpeg_bytes("not a jpeg", "nj.jpg"),
                      Catch::Contains("nj.jpg") && Catch::Contains("not a JPEG"));
  const std::string root = test::shared_data_dir();
  if (root.empty()) return test::skip(test::no_shared_data("JPEG truncation checks on real files"));
  for (const char* f : {"flower_small.q85_420_non_interleaved.jpg",
                        "flower.png.im_q85_420_progr.jpg", "flower.png.im_q85_420_R13B.jpg",
                        "flower.png.im_q85_gray.jpg"}) {
    const std::string path = root + "/codec_samples/flower/" + f;
    const std::string bytes = read_file(path);
    INFO(f);
    for (double frac : {0.1, 0.5, 0.9, 0.999}) {
      const size_t cut = static_cast<size_t>(double(bytes.size()) * frac);
      REQUIRE_THROWS_WITH(decode_jpeg_bytes(bytes.substr(0, cut), "cut.jpg"),
                          Catch::Contains("cut.jpg"));
    }
    // Losing only the EOI marker is also a truncated file.
    REQUIRE_THROWS(decode_jpeg_bytes(bytes.substr(0, bytes.size() - 2), "noeoi.jpg"));
  }
}

TEST_CASE("jpeg: CMYK (Adobe) converts to RGB like PIL", "[image]") {
  const TensorMap& g = test::golden("image");
  Image img = decode_jpeg_bytes(bytes_of(g.at("jpeg_cmyk.bytes")), "cmyk.jpg");
  const Tensor& want = g.at("jpeg_cmyk.expected");
  REQUIRE(img.channels == 3);
  REQUIRE(img.height == want.size(0));
  REQUIRE(img.width == want.size(1));
  const auto w = want.to_vector<int64_t>();
  int64_t maxdiff = 0;
  for (int64_t i = 0; i < img.numel(); ++i)
    maxdiff = std::max<int64_t>(maxdiff, std::abs(int64_t(img.samples8()[i]) - w[i]));
  CHECK(maxdiff <= 1);  // PIL and we may round the product c k / 255 differently
}

TEST_CASE("npy: files written by numpy", "[image]") {
  for (const char* n : {"f4", "f8", "i8", "i4", "u1", "b1", "scalar_f8", "empty_f4"}) {
    INFO(n);
    Tensor t = read_npy(golden_npy(n));
    Tensor want = test::golden_tensor("image", std::string("npy_") + n + ".expected");
    CHECK(test::bitwise_equal(t, want));
  }
  Tensor want = test::golden_tensor("image", "npy_f4.expected");
  CHECK(test::bitwise_equal(read_npy(golden_npy("v2_f4")), want));
  CHECK(test::bitwise_equal(read_npy(golden_npy("v3_f4")), want));
}

TEST_CASE("npy: malformed and unsupported files are rejected with the reason", "[image]") {
  const std::pair<const char*, const char*> cases[] = {
      {"bad_fortran", "Fortran"},       {"bad_bigendian", "big-endian"},
      {"bad_complex", "unsupported dtype"}, {"bad_u2", "unsupported dtype"},
      {"bad_truncated", "truncated"},   {"bad_trailing", "after the array data"},
      {"bad_magic", "bad magic"},       {"bad_header", "malformed header"},
  };
  for (const auto& [name, why] : cases) {
    INFO(name);
    const std::string path = golden_npy(name);
    REQUIRE_THROWS_WITH(read_npy(path), Catch::Contains(path) && Catch::Contains(why));
  }
  REQUIRE_THROWS_WITH(parse_npy(std::string("\x93NUMPY\x01\x00\x50\x00{", 11), "short.npy"),
                      Catch::Contains("short.npy"));
  REQUIRE_THROWS_WITH(read_npy("/nonexistent/x.npy"), Catch::Contains("/nonexistent/x.npy"));
}
