// Error reporting for evit: every failed check throws evit::Error carrying a message that names
// the op, the shapes/dtypes involved, and the source location. Library code never exits.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace evit {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
inline void append_all(std::ostringstream&) {}
template <class T, class... Rest>
void append_all(std::ostringstream& os, const T& first, const Rest&... rest) {
  os << first;
  append_all(os, rest...);
}
// Builds "message (file:line)" from any streamable pieces.
template <class... Args>
[[noreturn]] void throw_error(const char* file, int line, const Args&... args) {
  std::ostringstream os;
  append_all(os, args...);
  os << " (" << file << ":" << line << ")";
  throw Error(os.str());
}
}  // namespace detail

}  // namespace evit

// EVIT_CHECK(cond, pieces...): throws evit::Error with the concatenated pieces when cond is false.
#define EVIT_CHECK(cond, ...)                                                \
  do {                                                                       \
    if (!(cond)) ::evit::detail::throw_error(__FILE__, __LINE__, __VA_ARGS__); \
  } while (0)

// EVIT_THROW(pieces...): unconditional failure with the same message format.
#define EVIT_THROW(...) ::evit::detail::throw_error(__FILE__, __LINE__, __VA_ARGS__)

// Invariants of evit itself (a failure is a bug in evit, not in the caller's input).
#define EVIT_INTERNAL_ASSERT(cond) \
  EVIT_CHECK(cond, "internal error, please report: assertion '", #cond, "' failed")

// Marks functions usable from both host and CUDA device code (single-source pointwise math).
#if defined(__CUDACC__)
#define EVIT_HD __host__ __device__
#else
#define EVIT_HD
#endif
