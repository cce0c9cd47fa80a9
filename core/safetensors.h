// safetensors: 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to
// {dtype, shape, data_offsets: [begin, end)} (plus an optional "__metadata__" object of
// strings), then the raw little-endian row-major data. No code execution, trivially mmapable.
//
// The reader validates everything before touching data, and every error names the file and the
// entry at fault: header length beyond the file, bad JSON, unknown dtype, negative or overflowing
// shapes, offsets outside the data section or inconsistent with the shape, overlapping ranges,
// holes, and duplicate names. The writer sorts entries by name, pads the header to 8 bytes, and
// writes through a temporary file renamed into place, so a crash never leaves a torn file.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/file_io.h"  // read_file and write_file_atomic, which most users of this header need
#include "core/tensor.h"

namespace evit {

using TensorMap = std::map<std::string, Tensor>;
using StringMap = std::map<std::string, std::string>;

TensorMap load_safetensors(const std::string& path, StringMap* metadata = nullptr);
// Parses an in-memory file; `source` names it in error messages.
TensorMap parse_safetensors(std::string_view bytes, const std::string& source,
                            StringMap* metadata = nullptr);
void save_safetensors(const std::string& path, const TensorMap& tensors,
                      const StringMap& metadata = {});
// The bytes save_safetensors would write.
std::string serialize_safetensors(const TensorMap& tensors, const StringMap& metadata = {});


}  // namespace evit
