// libFuzzer target: annotation files as SAM training and evaluation read them. The bytes are parsed
// both as a COCO/LVIS instances file and as an SA-1B image file; every mask that parses is
// rasterised, decoded, re-encoded and compared with itself (a mismatch aborts, which the fuzzer
// reports like a crash).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/error.h"
#include "data/coco_rle.h"
#include "data/instances.h"

namespace {

void check_masks(const evit::data::InstanceSet& set) {
  for (const auto& ann : set.annotations) {
    try {
      const evit::data::Rle rle = evit::data::annotation_mask(set, ann);
      const std::vector<uint8_t> mask = evit::data::rle_decode(rle);
      const evit::data::Rle again = evit::data::rle_encode(mask.data(), rle.h, rle.w);
      const std::string s = evit::data::rle_to_string(again);
      if (evit::data::rle_from_string(s, rle.h, rle.w, "fuzz").counts != again.counts) std::abort();
      (void)evit::data::rle_bbox(rle);
    } catch (const evit::Error&) {
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    check_masks(evit::data::parse_instances(text, "fuzz.json"));
  } catch (const evit::Error&) {
  }
  try {
    check_masks(evit::data::parse_sa1b_image(text, "sa_fuzz.json"));
  } catch (const evit::Error&) {
  }
  return 0;
}
