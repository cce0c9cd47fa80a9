// JPEG decoding through libjpeg(-turbo).
//
// libjpeg's default error_exit prints and calls exit(); ours formats the message and longjmps
// back to the setjmp in jpeg_read_all, which returns false so the caller can throw evit::Error.
// As in png.cpp, no object with a non-trivial destructor is created between setjmp and the
// libjpeg calls (all owned memory lives in objects created by the caller).
//
// libjpeg treats a truncated stream as a *warning* (JWRN_JPEG_EOF: it pads with an EOI marker
// and returns a gray-filled lower half). We turn that, and the other warnings that mean the
// entropy-coded data is damaged, into errors: a training pipeline must not silently learn from
// half-gray images.
#include <cstdio>  // jpeglib.h needs FILE and size_t declared first

#include <jerror.h>
#include <jpeglib.h>

#include <csetjmp>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/limits.h"
#include "data/image.h"

namespace evit {

namespace {

struct JpegError {
  jpeg_error_mgr mgr;  // first member: libjpeg hands us a jpeg_error_mgr*
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  if (err->message[0] == '\0') (*cinfo->err->format_message)(cinfo, err->message);
  longjmp(err->jump, 1);
}

// Warnings whose presence means the decoded pixels are not what the file's author encoded.
bool is_corrupt_data_warning(int code) {
  return code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_HUFF_BAD_CODE ||
         code == JWRN_MUST_RESYNC || code == JWRN_NOT_SEQUENTIAL;
}

void on_emit_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  // level -1: a warning. Benign ones (extraneous bytes, unknown JFIF revision, bad ICC data)
  // leave the image intact; corrupt-data ones abort the decode like an error.
  if (is_corrupt_data_warning(cinfo->err->msg_code)) {
    auto* err = reinterpret_cast<JpegError*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, err->message);
    longjmp(err->jump, 1);
  }
  cinfo->err->num_warnings++;
}

struct JpegState {
  Image image;
  std::vector<JSAMPLE> cmyk_row;  // scratch row for CMYK -> RGB conversion
  std::string message;
  int64_t max_pixels = 0;                // EVIT_MAX_IMAGE_PIXELS, read before the libjpeg frame
  int64_t refused_h = 0, refused_w = 0;  // set when the header's size exceeds it
};

bool jpeg_read_all(jpeg_decompress_struct& cinfo, JpegError& err, std::string_view bytes,
                   JpegState& st) {
  if (setjmp(err.jump)) return false;
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  // Before jpeg_start_decompress, which allocates the image's buffers from the header's size;
  // the message is built outside this frame (no std::string may live across a longjmp).
  if (cinfo.image_width > 0 && int64_t(cinfo.image_height) > st.max_pixels / int64_t(cinfo.image_width)) {
    st.refused_h = cinfo.image_height, st.refused_w = cinfo.image_width;
    return false;
  }

  int channels = 3;
  bool cmyk = false;
  switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
      cinfo.out_color_space = JCS_GRAYSCALE;
      channels = 1;
      break;
    case JCS_CMYK:
    case JCS_YCCK:
      cinfo.out_color_space = JCS_CMYK;
      cmyk = true;
      break;
    default:  // YCbCr, or RGB components (libjpeg detects them from the Adobe marker / ids)
      cinfo.out_color_space = JCS_RGB;
      break;
  }
  cinfo.dct_method = JDCT_ISLOW;      // the accurate IDCT (also libjpeg's default)
  cinfo.do_fancy_upsampling = TRUE;   // triangle-filter chroma upsampling (default)
  jpeg_start_decompress(&cinfo);

  const int comps = cinfo.output_components;
  if (comps != (cmyk ? 4 : channels)) {
    std::snprintf(err.message, sizeof err.message, "unexpected %d output components", comps);
    return false;
  }
  try {
    st.image = Image(cinfo.output_height, cinfo.output_width, channels, 8);
    if (cmyk) st.cmyk_row.resize(size_t(cinfo.output_width) * 4);
  } catch (const Error& e) {
    std::snprintf(err.message, sizeof err.message, "%s", e.what());
    return false;
  }
  const size_t stride = size_t(cinfo.output_width) * channels;
  const bool inverted = cinfo.saw_Adobe_marker;  // Adobe writes CMYK inverted (255 = no ink)
  while (cinfo.output_scanline < cinfo.output_height) {
    const JDIMENSION y = cinfo.output_scanline;
    JSAMPROW row = cmyk ? st.cmyk_row.data() : st.image.data.data() + y * stride;
    if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) {
      std::snprintf(err.message, sizeof err.message, "decoder returned no scanline at row %u", y);
      return false;
    }
    if (cmyk) {
      uint8_t* out = st.image.data.data() + y * stride;
      for (JDIMENSION x = 0; x < cinfo.output_width; ++x) {
        int c = row[4 * x], m = row[4 * x + 1], yy = row[4 * x + 2], k = row[4 * x + 3];
        if (!inverted) c = 255 - c, m = 255 - m, yy = 255 - yy, k = 255 - k;
        // With inverted values c' = 255 - C: R = 255 (1 - C)(1 - K) = c' k' / 255.
        out[3 * x] = static_cast<uint8_t>((c * k + 127) / 255);
        out[3 * x + 1] = static_cast<uint8_t>((m * k + 127) / 255);
        out[3 * x + 2] = static_cast<uint8_t>((yy * k + 127) / 255);
      }
    }
  }
  jpeg_finish_decompress(&cinfo);
  return true;
}

}  // namespace

Image decode_jpeg_bytes(std::string_view bytes, const std::string& source) {
  EVIT_CHECK(bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xff &&
                 static_cast<unsigned char>(bytes[1]) == 0xd8,
             "decode_jpeg: '", source, "' is not a JPEG file (no SOI marker)");
  jpeg_decompress_struct cinfo{};
  JpegError err{};
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = on_error_exit;
  err.mgr.emit_message = on_emit_message;
  JpegState st;
  st.max_pixels = max_image_pixels();
  const bool ok = jpeg_read_all(cinfo, err, bytes, st);
  jpeg_destroy_decompress(&cinfo);
  if (st.refused_w > 0) check_image_pixels(st.refused_h, st.refused_w, "decode_jpeg: '" + source + "'");
  EVIT_CHECK(ok, "decode_jpeg: '", source, "': ", err.message);
  return std::move(st.image);
}

}  // namespace evit
