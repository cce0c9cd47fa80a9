// Whole-file reads and atomic writes, the two ways evit touches files it owns or is handed.
//
// read_file refuses what is not a regular file (a directory, /dev/zero, a pipe) and files above
// EVIT_MAX_FILE_BYTES before reading a byte, naming the path. write_file_atomic writes PATH.tmp,
// flushes it to disk and renames it over PATH, so a crash leaves either the old file or the new
// one, never a torn one; on any failure it removes PATH.tmp again.
#pragma once
#include <string>
#include <string_view>

namespace evit {

std::string read_file(const std::string& path);

// Throws unless `path` names an existing regular file ("what" says what it should hold, e.g.
// "weights"), with the reason: missing, a directory, a device or pipe.
void check_regular_file(const std::string& path, const std::string& what = "file");

void write_file_atomic(const std::string& path, std::string_view bytes);

}  // namespace evit
