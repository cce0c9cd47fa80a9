#include "core/limits.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"

namespace evit {
namespace {

// The value of environment variable `name` when set (a positive integer), else `fallback`. Read on
// every call: limits are checked once per file or tensor, and tests change them at run time.
int64_t limit_from_env(const char* name, int64_t fallback) {
  const char* s = std::getenv(name);
  if (!s || !*s) return fallback;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s, &end, 10);
  EVIT_CHECK(errno == 0 && end && *end == '\0' && v > 0, "environment variable ", name, "='", s,
             "' must be a positive integer");
  return v;
}

// Read once: sysconf(_SC_PHYS_PAGES) is a system call, and every CPU tensor allocation asks.
int64_t physical_memory_bytes() {
  static const int64_t bytes = [] {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return int64_t(1) << 40;  // unknown: 1 TiB, no practical bound
    return static_cast<int64_t>(pages) * page;
  }();
  return bytes;
}

}  // namespace

int64_t max_file_bytes() { return limit_from_env("EVIT_MAX_FILE_BYTES", int64_t(16) << 30); }
int64_t max_image_pixels() { return limit_from_env("EVIT_MAX_IMAGE_PIXELS", 100'000'000); }
int64_t max_tensor_bytes() { return limit_from_env("EVIT_MAX_TENSOR_BYTES", physical_memory_bytes()); }

void check_image_pixels(int64_t h, int64_t w, const std::string& what) {
  const int64_t limit = max_image_pixels();
  EVIT_CHECK(h > 0 && w > 0 && h <= limit / w, what, " is ", h, "x", w, " pixels, above the limit of ", limit,
             " pixels (set EVIT_MAX_IMAGE_PIXELS to allow larger images)");
}

std::string human_bytes(double bytes) {
  static const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (bytes >= 1024 && u < 6) bytes /= 1024, ++u;
  char buf[64];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

}  // namespace evit
