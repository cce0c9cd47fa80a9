#include <string>

#include "core/error.h"
#include "core/limits.h"
#include "tools/commands.h"

namespace evit::cli {

std::pair<int64_t, int64_t> parse_size_option(const std::string& option, const std::string& text, bool allow_square) {
  const char* expected = allow_square ? "HxW or S (e.g. 512x1024 or 224)" : "HxW (e.g. 512x1024)";
  const auto x = text.find('x');
  int64_t h = 0, w = 0;
  try {
    size_t used_h = 0, used_w = 0;
    if (x == std::string::npos) {
      if (!allow_square) throw std::invalid_argument(text);
      h = w = std::stoll(text, &used_h);
      if (used_h != text.size()) throw std::invalid_argument(text);
    } else {
      h = std::stoll(text.substr(0, x), &used_h);
      w = std::stoll(text.substr(x + 1), &used_w);
      if (used_h != x || used_w != text.size() - x - 1) throw std::invalid_argument(text);
    }
  } catch (...) {
    EVIT_THROW(option, ": expected ", expected, ", got '", text, "'");
  }
  EVIT_CHECK(h > 0 && w > 0, option, ": height and width must be positive, got '", text, "'");
  check_image_pixels(h, w, option + " " + text);  // the activations of a larger input would not fit
  return {h, w};
}

}  // namespace evit::cli
