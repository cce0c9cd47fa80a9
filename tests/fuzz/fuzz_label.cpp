// libFuzzer target: a segmentation label file as the datasets read it: PNG (or JPEG) bytes
// decoded, checked and mapped to class ids through the Cityscapes and ADE20K label maps.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "data/dataset.h"
#include "data/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<uint8_t> cityscapes = evit::data::cityscapes_label_map();
  try {
    const evit::Image lab = evit::decode_image_bytes(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.png");
    (void)evit::data::label_image_to_classes(lab, cityscapes, 33, "fuzz label");
  } catch (const evit::Error&) {
  }
  return 0;
}
