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

// The pixel layout libpng will deliver once its transformations are set.
struct PngLayout {
  png_uint_32 width = 0, height = 0;
  int channels = 0, depth = 0;
  size_t rowbytes = 0;
};

// The two libpng frames below hold nothing with a destructor (no std::string, no vector), so
// a longjmp out of libpng skips nothing that needs cleanup; every message and allocation is made
// between them. Each returns false after a libpng error (ctx.message says which).

// Reads the header and sets the transformations: palette -> RGB, gray 1/2/4 -> 8 bits,
// tRNS -> alpha, 16-bit samples to native endian, Adam7 de-interlacing.
bool png_read_header(png_structp png, png_infop info, PngContext& ctx, PngLayout& out) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_read_fn(png, &ctx, on_read);
  // Pixel data only: accept files whose ancillary chunks have bad CRCs (libpng then warns),
  // but a bad CRC on a critical chunk (IHDR, PLTE, IDAT) stays an error.
  png_set_crc_action(png, PNG_CRC_WARN_DISCARD, PNG_CRC_ERROR_QUIT);
  png_read_info(png, info);
  int depth = 0, color = 0, interlace = 0;
  png_get_IHDR(png, info, &out.width, &out.height, &depth, &color, &interlace, nullptr, nullptr);
  png_set_expand(png);
  if (depth == 16) png_set_swap(png);  // PNG is big-endian; Image stores native (little) endian
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  out.channels = png_get_channels(png, info);
  out.depth = png_get_bit_depth(png, info);
  out.rowbytes = png_get_rowbytes(png, info);
  return true;
}

// Decodes the pixels into `rows`, then reads the chunks after them up to IEND (a file cut off
// there is still truncated).
bool png_read_rows(png_structp png, png_infop info, png_bytep* rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  png_read_end(png, nullptr);
  return true;
}

// Runs the read sequence; throws naming `source` on any problem.
Image png_read_all(png_structp png, png_infop info, PngContext& ctx, const std::string& source) {
  PngLayout l;
  EVIT_CHECK(png_read_header(png, info, ctx, l), "decode_png: '", source, "': ", ctx.message);
  EVIT_CHECK(l.channels >= 1 && l.channels <= 4 && (l.depth == 8 || l.depth == 16), "decode_png: '", source,
             "': unsupported pixel layout after expansion (", l.channels, " channels, ", l.depth, " bits)");
  EVIT_CHECK(l.rowbytes == size_t(l.width) * l.channels * (l.depth / 8), "decode_png: '", source,
             "': unexpected row size ", l.rowbytes);
  // libpng's own limit is 1M x 1M pixels; EVIT_MAX_IMAGE_PIXELS bounds the product before the
  // allocation a hostile header asks for.
  check_image_pixels(l.height, l.width, "decode_png: '" + source + "'");
  Image image(l.height, l.width, l.channels, l.depth);
  std::vector<png_bytep> rows(l.height);
  for (png_uint_32 y = 0; y < l.height; ++y) rows[y] = image.data.data() + size_t(y) * l.rowbytes;
  EVIT_CHECK(png_read_rows(png, info, rows.data()), "decode_png: '", source, "': ", ctx.message);
  return image;
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
  // Destroys the reader on every way out, an exception included.
  struct Reader {
    png_structp png;
    png_infop info;
    ~Reader() { png_destroy_read_struct(&png, &info, nullptr); }
  } reader{png, info};
  return png_read_all(png, info, ctx, source);
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
