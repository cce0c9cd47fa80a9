// libFuzzer target: the safetensors parser (weights files come from anywhere).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "core/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const evit::TensorMap m = evit::parse_safetensors(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
    // A parsed file must round-trip: whatever the parser accepts, the writer can write.
    (void)evit::serialize_safetensors(m);
  } catch (const evit::Error&) {
  }
  return 0;
}
