// libFuzzer target: PNG decoding through libpng, and the conversions every loader applies.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "data/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const evit::Image img = evit::decode_png_bytes(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.png");
    (void)evit::image_to_chw_float(img);
  } catch (const evit::Error&) {
  }
  return 0;
}
