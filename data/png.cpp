// PNG decode/encode through libpng.
//
// libpng reports errors by calling an error function that must not return; we longjmp back to
// the setjmp in the decode/encode function and throw evit::Error from there. To keep the longjmp
// well-defined in C++, no object with a non-trivial destructor is created between the setjmp and
// any libpng call: everything that owns memory (the output Image, the row pointers, the message
// string) lives in a context object created before setjmp, and the frames the longjmp skips are
// libpng's own C frames and our callbacks, which hold no such objects at the jump.
#include <png.h>

#include <csetjmp>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/limits.h"
#include "data/image.h"

namespace evit {

namespace {

struct PngContext {
  std::string source;
  std::string message;  // first error message from libpng or our callbacks
  std::string_view input;
  size_t pos = 0;
  std::string output;
};

void on_error(png_structp png, png_const_charp msg) {
  auto* ctx = static_cast<PngContext*>(png_get_error_ptr(png));
  if (ctx->message.empty()) ctx->message = msg ? msg : "unknown libpng error";
  png_longjmp(png, 1);
}

// Warnings (bad ancillary chunks, odd ICC profiles) do not affect the pixels: ignored.
void on_warning(png_structp, png_const_charp) {}

void on_read(png_structp png, png_bytep out, png_size_t n) {
  auto* ctx = static_cast<PngContext*>(png_get_io_ptr(png));
  if (ctx->input.size() - ctx->pos < n) {
    // Truncated file: libpng would otherwise see garbage. png_error longjmps.
    png_error(png, "unexpected end of file (truncated PNG)");
  }
  std::memcpy(out, ctx->input.data() + ctx->pos, n);
  ctx->pos += n;
}

void on_write(png_structp png, png_bytep data, png_size_t n) {
  auto* ctx = static_cast<PngContext*>(png_get_io_ptr(png));
  ctx->output.append(reinterpret_cast<const char*>(data), n);
}

void on_flush(png_structp) {}

struct ReadState {
  Image image;
  std::vector<png_bytep> rows;
};

// Runs the libpng read sequence; returns false after a libpng error (ctx.message says which).
// Kept free of objects with destructors so the longjmp skips nothing that needs cleanup.
bool png_read_all(png_structp png, png_infop info, PngContext& ctx, ReadState& st) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_read_fn(png, &ctx, on_read);
  // Pixel data only: accept files whose ancillary chunks have bad CRCs (libpng then warns),
  // but a bad CRC on a critical chunk (IHDR, PLTE, IDAT) stays an error.
  png_set_crc_action(png, PNG_CRC_WARN_DISCARD, PNG_CRC_ERROR_QUIT);
  png_read_info(png, info);

  png_uint_32 w = 0, h = 0;
  int depth = 0, color = 0, interlace = 0;
  png_get_IHDR(png, info, &w, &h, &depth, &color, &interlace, nullptr, nullptr);
  // Palette -> RGB, gray 1/2/4 -> 8 bits, tRNS -> alpha channel.
  png_set_expand(png);
  if (depth == 16) png_set_swap(png);  // PNG is big-endian; Image stores native (little) endian
  png_set_interlace_handling(png);     // libpng de-interlaces Adam7 into full rows
  png_read_update_info(png, info);

  const int channels = png_get_channels(png, info);
  const int out_depth = png_get_bit_depth(png, info);
  if (channels < 1 || channels > 4 || (out_depth != 8 && out_depth != 16)) {
    ctx.message = "unsupported pixel layout after expansion (" + std::to_string(channels) +
                  " channels, " + std::to_string(out_depth) + " bits)";
    return false;
  }
  const size_t rowbytes = png_get_rowbytes(png, info);
  if (rowbytes != size_t(w) * channels * (out_depth / 8)) {
    ctx.message = "unexpected row size " + std::to_string(rowbytes);
    return false;
  }
  // Allocation can throw; that is fine here since no libpng frame is on the stack.
  try {
    check_image_pixels(h, w, "the image");  // before the allocation a hostile header asks for
    st.image = Image(h, w, channels, out_depth);
  } catch (const Error& e) {
    ctx.message = e.what();
    return false;
  }
  st.rows.resize(h);
  for (png_uint_32 y = 0; y < h; ++y) st.rows[y] = st.image.data.data() + size_t(y) * rowbytes;
  png_read_image(png, st.rows.data());
  // Reads the chunks after the image data up to IEND: a file cut off there is still truncated.
  png_read_end(png, nullptr);
  return true;
}

}  // namespace

Image decode_png_bytes(std::string_view bytes, const std::string& source) {
  EVIT_CHECK(bytes.size() >= 8 && png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8) == 0,
             "decode_png: '", source, "' is not a PNG file (bad signature)");
  PngContext ctx;
  ctx.source = source;
  ctx.input = bytes;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, on_error, on_warning);
  EVIT_CHECK(png != nullptr, "decode_png: '", source, "': cannot create the libpng reader");
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    EVIT_THROW("decode_png: '", source, "': cannot create the libpng info struct");
  }
  // libpng's own limit is 1M x 1M pixels; EVIT_MAX_IMAGE_PIXELS (core/limits.h) bounds the product.
  ReadState st;
  const bool ok = png_read_all(png, info, ctx, st);
  png_destroy_read_struct(&png, &info, nullptr);
  EVIT_CHECK(ok, "decode_png: '", source, "': ", ctx.message);
  return std::move(st.image);
}

namespace {

bool png_write_all(png_structp png, png_infop info, PngContext& ctx, const Image& image,
                   std::vector<png_bytep>& rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_write_fn(png, &ctx, on_write, on_flush);
  static const int kColor[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
  png_set_IHDR(png, info, static_cast<png_uint_32>(image.width),
               static_cast<png_uint_32>(image.height), 8, kColor[image.channels],
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  // Level 6 is zlib's default trade-off; training outputs are written often and read rarely.
  png_set_compression_level(png, 6);
  png_write_info(png, info);
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  return true;
}

}  // namespace

std::string encode_png_bytes(const Image& image) {
  EVIT_CHECK(image.bit_depth == 8, "encode_png: only 8-bit images are written, got ", image.desc());
  EVIT_CHECK(image.channels >= 1 && image.channels <= 4 && image.height > 0 && image.width > 0,
             "encode_png: bad image ", image.desc());
  EVIT_CHECK(image.height <= 0x7fffffff && image.width <= 0x7fffffff,
             "encode_png: image too large for PNG: ", image.desc());
  EVIT_CHECK(static_cast<int64_t>(image.data.size()) == image.numel(),
             "encode_png: image ", image.desc(), " holds ", image.data.size(),
             " bytes, expected ", image.numel());
  PngContext ctx;
  ctx.source = "<encode_png>";
  std::vector<png_bytep> rows(image.height);
  for (int64_t y = 0; y < image.height; ++y)
    rows[y] = const_cast<png_bytep>(image.samples8() + y * image.width * image.channels);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, on_error, on_warning);
  EVIT_CHECK(png != nullptr, "encode_png: cannot create the libpng writer");
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    EVIT_THROW("encode_png: cannot create the libpng info struct");
  }
  const bool ok = png_write_all(png, info, ctx, image, rows);
  png_destroy_write_struct(&png, &info);
  EVIT_CHECK(ok, "encode_png: libpng failed: ", ctx.message);
  return std::move(ctx.output);
}

}  // namespace evit
