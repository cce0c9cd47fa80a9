// NumPy .npy files (format versions 1.0, 2.0 and 3.0).
//
// Supported: little-endian (or byte-order-free) '<f4' -> f32, '<f8' -> f64, '<i8' -> i64,
// '<i4' -> i32, '|u1' -> u8, '|b1' -> bool, in C order, any rank (0-D included). Everything else
// (Fortran order, big-endian data, other dtypes, structured arrays, malformed headers, data
// shorter or longer than the shape says) is an error naming the file and the problem.
#pragma once
#include <string>
#include <string_view>

#include "core/tensor.h"

namespace evit {

Tensor read_npy(const std::string& path);
Tensor parse_npy(std::string_view bytes, const std::string& source);

}  // namespace evit
