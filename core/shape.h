// Shapes and strides (in elements) and the helpers every op uses to validate them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace evit {

using Shape = std::vector<int64_t>;

// "[2,3,4]"
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);
// Row-major strides for a contiguous tensor of this shape.
Shape contiguous_strides(const Shape& s);
// Wraps a possibly negative dim into [0, ndim); throws naming `op` if out of range.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);
// The broadcast of two shapes (numpy rules); throws naming `op` and both shapes if impossible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace evit
