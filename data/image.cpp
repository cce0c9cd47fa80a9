// Image container, magic-byte dispatch and tensor conversions (codecs: png.cpp, jpeg.cpp).
#include "data/image.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <sstream>

#include "core/error.h"
#include "core/safetensors.h"

namespace evit {

namespace {
// Upper bound on decoded samples: protects against headers that claim absurd sizes (a 1 GB
// allocation is already far beyond any training image).
constexpr int64_t kMaxSamples = int64_t(1) << 30;
}  // namespace

Image::Image(int64_t h, int64_t w, int64_t c, int depth)
    : height(h), width(w), channels(c), bit_depth(depth) {
  EVIT_CHECK(h > 0 && w > 0, "Image: height and width must be positive, got ", h, "x", w);
  EVIT_CHECK(c >= 1 && c <= 4, "Image: channels must be 1..4, got ", c);
  EVIT_CHECK(depth == 8 || depth == 16, "Image: bit depth must be 8 or 16, got ", depth);
  EVIT_CHECK(h <= kMaxSamples / w && h * w <= kMaxSamples / c, "Image: ", h, "x", w, "x", c,
             " samples exceed the limit of ", kMaxSamples);
  data.assign(static_cast<size_t>(h * w * c) * (depth / 8), 0);
}

uint32_t Image::at(int64_t y, int64_t x, int64_t c) const {
  EVIT_CHECK(y >= 0 && y < height && x >= 0 && x < width && c >= 0 && c < channels,
             "Image::at(", y, ", ", x, ", ", c, ") out of range for ", desc());
  int64_t i = (y * width + x) * channels + c;
  return bit_depth == 16 ? samples16()[i] : samples8()[i];
}

std::string Image::desc() const {
  std::ostringstream os;
  os << height << "x" << width << "x" << channels << (bit_depth == 16 ? " u16" : " u8");
  return os.str();
}

// ---- dispatch ---------------------------------------------------------------------------------
Image decode_image_bytes(std::string_view bytes, const std::string& source) {
  static const unsigned char kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  auto starts = [&](const unsigned char* m, size_t n) {
    return bytes.size() >= n && std::equal(m, m + n, reinterpret_cast<const unsigned char*>(bytes.data()));
  };
  static const unsigned char kJpeg[3] = {0xff, 0xd8, 0xff};
  if (starts(kPng, 8)) return decode_png_bytes(bytes, source);
  if (starts(kJpeg, 3)) return decode_jpeg_bytes(bytes, source);
  EVIT_THROW("read_image: '", source, "' is neither a PNG nor a JPEG file (",
             bytes.size() < 3 ? "file too short" : "unknown magic bytes", ")");
}

Image read_image(const std::string& path) { return decode_image_bytes(read_file(path), path); }
Image decode_png(const std::string& path) { return decode_png_bytes(read_file(path), path); }
Image decode_jpeg(const std::string& path) { return decode_jpeg_bytes(read_file(path), path); }

void encode_png(const std::string& path, const Image& image) {
  std::string bytes;
  try {
    bytes = encode_png_bytes(image);
  } catch (const Error& e) {
    EVIT_THROW("encode_png: cannot write '", path, "': ", e.what());
  }
  write_file_atomic(path, bytes);
}

// ---- conversions ------------------------------------------------------------------------------
Tensor image_to_hwc_u8(const Image& image) {
  EVIT_CHECK(image.numel() > 0, "image_to_hwc_u8: empty image");
  Tensor t = empty({image.height, image.width, image.channels}, DType::u8);
  uint8_t* out = t.data_ptr<uint8_t>();
  const int64_t n = image.numel();
  if (image.bit_depth == 8) {
    std::copy(image.samples8(), image.samples8() + n, out);
  } else {
    const uint16_t* in = image.samples16();
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>((in[i] * 2 + 257) / 514);
  }
  return t;
}

namespace {

// v / 255 for every 8-bit sample value, correctly rounded: the division done once per value
// instead of once per sample (a decoded ImageNet photo has about half a million samples).
template <typename T>
const std::array<T, 256>& unit_scale_table() {
  static const std::array<T, 256> table = [] {
    std::array<T, 256> t{};
    for (int v = 0; v < 256; ++v) t[static_cast<size_t>(v)] = static_cast<T>(v / 255.0);
    return t;
  }();
  return table;
}

// Interleaved 8-bit samples [HW][C] -> planes [C][HW], value v of channel c becoming
// table_of(c)[v].
template <typename T, typename TableOf>
void planes_through_tables(const uint8_t* in, int64_t hw, int64_t channels, TableOf table_of, T* out) {
  for (int64_t c = 0; c < channels; ++c) {
    const std::array<T, 256>& table = table_of(c);
    T* plane = out + c * hw;
    const uint8_t* src = in + c;
    for (int64_t p = 0; p < hw; ++p) plane[p] = table[src[p * channels]];
  }
}

// The same with v / 255 for every channel.
template <typename T>
void planes_from_interleaved(const uint8_t* in, int64_t hw, int64_t channels, T* out) {
  planes_through_tables(in, hw, channels, [](int64_t) -> const std::array<T, 256>& { return unit_scale_table<T>(); },
                        out);
}

}  // namespace

Tensor image_to_chw_float(const Image& image, DType dtype) {
  EVIT_CHECK(dtype == DType::f32 || dtype == DType::f64,
             "image_to_chw_float: dtype must be f32 or f64, got ", dtype_name(dtype));
  EVIT_CHECK(image.numel() > 0, "image_to_chw_float: empty image");
  const int64_t H = image.height, W = image.width, C = image.channels;
  Tensor t = empty({C, H, W}, dtype);
  if (image.bit_depth == 8) {
    if (dtype == DType::f32) planes_from_interleaved(image.samples8(), H * W, C, t.data_ptr<float>());
    else planes_from_interleaved(image.samples8(), H * W, C, t.data_ptr<double>());
    return t;
  }
  // Division (not multiplication by 1/max) so that v / 65535 is the correctly rounded value.
  auto fill = [&](auto* out) {
    using T = std::remove_pointer_t<decltype(out)>;
    for (int64_t p = 0; p < H * W; ++p)
      for (int64_t c = 0; c < C; ++c) out[c * H * W + p] = static_cast<T>(image.samples16()[p * C + c] / 65535.0);
  };
  if (dtype == DType::f32) fill(t.data_ptr<float>());
  else fill(t.data_ptr<double>());
  return t;
}

Tensor hwc_u8_to_chw_float(const Tensor& hwc) {
  EVIT_CHECK(hwc.dtype() == DType::u8 && hwc.dim() == 3 && hwc.size(2) >= 1 && hwc.size(2) <= 4,
             "hwc_u8_to_chw_float: expected a u8 [H,W,C] image with C in 1..4, got ", hwc.desc());
  return hwc_u8_to_chw_mapped(hwc, std::vector<std::array<float, 256>>(static_cast<size_t>(hwc.size(2)),
                                                                       unit_scale_table<float>()));
}

Tensor hwc_u8_to_chw_mapped(const Tensor& hwc, const std::vector<std::array<float, 256>>& tables) {
  EVIT_CHECK(hwc.dtype() == DType::u8 && hwc.dim() == 3 && hwc.size(2) == static_cast<int64_t>(tables.size()),
             "hwc_u8_to_chw_mapped: expected a u8 [H,W,", tables.size(), "] image (one table per channel), got ",
             hwc.desc());
  const Tensor c = hwc.contiguous();
  const int64_t H = c.size(0), W = c.size(1), C = c.size(2);
  Tensor t = empty({C, H, W}, DType::f32);
  planes_through_tables(c.data_ptr<uint8_t>(), H * W, C,
                        [&](int64_t ch) -> const std::array<float, 256>& { return tables[static_cast<size_t>(ch)]; },
                        t.data_ptr<float>());
  return t;
}

bool is_hwc_u8_rgb(const Tensor& t) { return t.defined() && t.dtype() == DType::u8 && t.dim() == 3 && t.size(2) == 3; }

Image chw_float_to_image(const Tensor& chw) {
  EVIT_CHECK(chw.dim() == 3, "chw_float_to_image: expected a [C,H,W] tensor, got ", chw.desc());
  EVIT_CHECK(chw.dtype() == DType::f32 || chw.dtype() == DType::f64,
             "chw_float_to_image: expected f32 or f64, got ", chw.desc());
  EVIT_CHECK(chw.size(0) >= 1 && chw.size(0) <= 4,
             "chw_float_to_image: channels must be 1..4, got ", chw.desc());
  Tensor t = chw.to(DType::f64).contiguous();
  const int64_t C = t.size(0), H = t.size(1), W = t.size(2);
  Image img(H, W, C, 8);
  const double* in = t.data_ptr<double>();
  for (int64_t c = 0; c < C; ++c)
    for (int64_t p = 0; p < H * W; ++p) {
      double v = in[c * H * W + p];
      v = std::isnan(v) ? 0.0 : std::clamp(v, 0.0, 1.0);
      img.data[p * C + c] = static_cast<uint8_t>(std::lround(v * 255.0));
    }
  return img;
}

Image hwc_u8_to_image(const Tensor& hwc) {
  EVIT_CHECK(hwc.dim() == 3 && hwc.dtype() == DType::u8 && hwc.size(2) >= 1 && hwc.size(2) <= 4,
             "hwc_u8_to_image: expected a u8 [H,W,C] tensor with C in 1..4, got ", hwc.desc());
  // Rows are copied straight out of a view whose rows are dense (a crop of a larger image):
  // no contiguous copy first.
  const Tensor t = hwc.stride(2) == 1 && hwc.stride(1) == hwc.size(2) ? hwc : hwc.contiguous();
  const int64_t H = t.size(0), row = t.size(1) * t.size(2);
  Image img(H, t.size(1), t.size(2), 8);
  const uint8_t* src = t.data_ptr<uint8_t>();
  for (int64_t y = 0; y < H; ++y) std::memcpy(img.samples8() + y * row, src + y * t.stride(0), static_cast<size_t>(row));
  return img;
}

}  // namespace evit
