// Every shipped config validates against the training schema.
#include <filesystem>

#include "tests/support/test_util.h"
#include "train/config.h"

using namespace evit;

TEST_CASE("every config in configs/ is valid", "[config]") {
  std::filesystem::path dir = std::filesystem::path(EVIT_GOLDEN_DIR) / ".." / ".." / "configs";
  int n = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".json") continue;
    INFO(e.path().filename().string());
    REQUIRE_NOTHROW(train::load_config_file(e.path().string(), train::training_config_schema()));
    ++n;
  }
  REQUIRE(n >= 20);
}
