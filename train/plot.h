// Training curves as PNG files, drawn by gnuplot (Debian package gnuplot-nox, installed by
// tools/install_deps.sh).
#pragma once
#include <string>
#include <vector>

namespace evit::train {

// Reads a metrics.jsonl (one JSON object per line, each with a numeric "step" and any numeric
// fields: "loss", "lr", "val/mIoU", "val/psnr", ...; other fields are ignored) and writes
//   <out_png_prefix>_train.png  the training fields against step; learning-rate fields (names
//                               containing "lr") on the right-hand axis;
//   <out_png_prefix>_val.png    the "val/..." fields, one panel per metric (their scales differ).
// A group without fields writes no file. Returns the paths written. The gnuplot script and data
// files go to a temporary folder that is removed afterwards.
// Errors: the file cannot be read, a line is not a JSON object or lacks a numeric "step" (naming
// the line), no numeric field at all, gnuplot missing ("install gnuplot-nox") or failing (with
// its message).
std::vector<std::string> plot_metrics(const std::string& jsonl_path, const std::string& out_png_prefix);

}  // namespace evit::train
