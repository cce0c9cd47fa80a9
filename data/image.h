// Image files: PNG (libpng), JPEG (libjpeg-turbo) and the conversions between decoded pixels
// and evit tensors.
//
// Decoded pixels live in an `Image`, not directly in a Tensor, because PNG carries 16-bit samples
// and evit has no u16 dtype: an Image holds H x W x C interleaved samples (row-major, channel
// fastest) of 8 or 16 bits, C = 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA). No colour
// management is applied (gamma, ICC and cHRM chunks are ignored), like PIL and OpenCV.
//
// Every failure throws evit::Error naming the file (or the `source` given for in-memory data)
// and the decoder's own message. Truncated or corrupt data is an error, never a partial image.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"

namespace evit {

struct Image {
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 0;  // 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
  int bit_depth = 8;     // 8 or 16
  // Samples, row-major [H][W][C]. 8-bit: one byte per sample. 16-bit: native-endian uint16_t
  // (use samples16()).
  std::vector<uint8_t> data;

  Image() = default;
  Image(int64_t h, int64_t w, int64_t c, int depth = 8);  // zero-filled, validates the sizes

  int64_t numel() const { return height * width * channels; }
  uint8_t* samples8() { return data.data(); }
  const uint8_t* samples8() const { return data.data(); }
  uint16_t* samples16() { return reinterpret_cast<uint16_t*>(data.data()); }
  const uint16_t* samples16() const { return reinterpret_cast<const uint16_t*>(data.data()); }
  // Sample (y, x, c) as an integer in [0, 2^bit_depth).
  uint32_t at(int64_t y, int64_t x, int64_t c) const;
  // Largest sample value: 255 or 65535.
  double max_value() const { return bit_depth == 16 ? 65535.0 : 255.0; }
  std::string desc() const;  // "1512x2268x3 u8"
};

// ---- decoding ---------------------------------------------------------------------------------
// PNG: every colour type and bit depth (1/2/4/8/16), palettes (expanded to RGB, or RGBA when a
// tRNS chunk is present), tRNS on gray/RGB (expanded to an alpha channel), Adam7 interlacing.
// Sub-byte depths are scaled to 8 bits (gray 4-bit v -> 17 v); 16-bit files stay 16-bit.
Image decode_png(const std::string& path);
Image decode_png_bytes(std::string_view bytes, const std::string& source);

// JPEG: baseline, progressive, any chroma subsampling, restart markers, gray (C = 1), YCbCr or
// RGB components (C = 3), CMYK/YCCK (converted to RGB, Adobe inverted convention). Decoded with
// the accurate integer IDCT and libjpeg's default (fancy) upsampling. Warnings that mean the
// entropy-coded data is damaged (premature end of file, bad Huffman code, ...) are errors.
Image decode_jpeg(const std::string& path);
Image decode_jpeg_bytes(std::string_view bytes, const std::string& source);

// Dispatches on the file's magic bytes (PNG signature / JPEG SOI), not on its extension.
Image read_image(const std::string& path);
Image decode_image_bytes(std::string_view bytes, const std::string& source);

// ---- encoding ---------------------------------------------------------------------------------
// 8-bit gray (C=1), gray+alpha (C=2), RGB (C=3) or RGBA (C=4); written to a temporary file that
// is renamed into place, so a failed write never leaves a torn file behind.
void encode_png(const std::string& path, const Image& image);
std::string encode_png_bytes(const Image& image);

// ---- conversions ------------------------------------------------------------------------------
// [H,W,C] u8 tensor of the samples (16-bit samples are rounded to 8 bits: round(v / 257)).
Tensor image_to_hwc_u8(const Image& image);
// [C,H,W] tensor (f32 or f64) with values sample / max_value in [0, 1].
Tensor image_to_chw_float(const Image& image, DType dtype = DType::f32);
// [H,W,C] u8 tensor (C in 1..4) -> [C,H,W] f32 tensor of v / 255, the values image_to_chw_float
// gives for the same samples.
Tensor hwc_u8_to_chw_float(const Tensor& hwc);
// [H,W,C] u8 tensor -> [C,H,W] f32 tensor with value v of channel c becoming tables[c][v]: any
// per-sample map of 8-bit values (normalisation) as one lookup. One table per channel.
Tensor hwc_u8_to_chw_mapped(const Tensor& hwc, const std::vector<std::array<float, 256>>& tables);
// Whether `t` is an 8-bit RGB image in samples order, u8 [H,W,3] (data/dataset.h: Sample::input).
bool is_hwc_u8_rgb(const Tensor& t);
// The inverse: [C,H,W] float tensor (C in 1..4) -> 8-bit Image, round(clamp(v, 0, 1) * 255).
Image chw_float_to_image(const Tensor& chw);
// [H,W,C] u8 tensor (C in 1..4) -> 8-bit Image.
Image hwc_u8_to_image(const Tensor& hwc);

}  // namespace evit
