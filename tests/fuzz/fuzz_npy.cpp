// libFuzzer target: the .npy reader.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "data/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)evit::parse_npy(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.npy");
  } catch (const evit::Error&) {
  }
  return 0;
}
