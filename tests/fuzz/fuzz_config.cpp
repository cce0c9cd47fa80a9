// libFuzzer target: a training config from text to typed settings (JSON parsing, duplicate keys,
// the schema, defaults, the typed config and the RandAugment policy string).
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "data/rand_augment.h"
#include "train/config.h"
#include "train/run_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const nlohmann::json j = evit::train::load_config_text(text, "fuzz.json", evit::train::training_config_schema());
    const evit::train::RunConfig rc = evit::train::parse_run_config(j);
    if (!rc.train.rand_augment.empty())
      (void)evit::data::parse_rand_augment(rc.train.rand_augment, "config.train.rand_augment");
  } catch (const evit::Error&) {
  }
  return 0;
}
