// Times forward + backward of EfficientViT's hot ops at B1 shapes for a 512x1024 input.
// The cases mirror bench/op_cases.py (same names, shapes, warm-up and run counts); the PyTorch
// twin is bench/ops_torch.py and bench/run_op_bench.sh prints the comparison table.
// Output: one JSON line per case {"op": name, "median_ms": t, "runs": n}.
//
//   bench_ops [--list] [CASE]
// CASE: a case's exact name runs that case alone; otherwise every case whose name contains it.
// --list prints the names of the cases CASE selects, one per line, and runs nothing.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/generator.h"
#include "core/parallel.h"
#include "ops/attention.h"
#include "ops/conv.h"
#include "ops/linalg.h"
#include "ops/norm.h"
#include "ops/ops.h"

using namespace evit;

namespace {

constexpr int kWarmup = 3;
constexpr int kRuns = 15;

struct Case {
  std::string name;
  std::vector<Shape> shapes;
  // Runs the forward pass on fresh leaves `in`.
  std::function<Tensor(const std::vector<Tensor>&)> forward;
};

Tensor conv_case(const std::vector<Tensor>& in, int64_t stride, int64_t pad, int64_t groups) {
  return conv2d(in[0], in[1], Tensor(), stride, pad, 1, groups);
}

// Training-mode BatchNorm (+ act) of in = {x, weight, bias}; the running statistics it updates are
// made once per channel count, outside the timed region, as the PyTorch twin makes them.
Tensor batch_norm_case(const std::vector<Tensor>& in, ActivationKind act) {
  static std::map<int64_t, std::pair<Tensor, Tensor>> running;
  const int64_t C = in[0].size(1);
  auto it = running.find(C);
  if (it == running.end()) it = running.emplace(C, std::make_pair(zeros({C}), ones({C}))).first;
  return batch_norm_act(in[0], in[1], in[2], it->second.first, it->second.second, true, 0.1, 1e-5, act);
}

std::vector<Case> cases() {
  return {
      {"conv2d 1x1 128->512 [1,128,32,64]", {{1, 128, 32, 64}, {512, 128, 1, 1}},
       [](auto& in) { return conv_case(in, 1, 0, 1); }},
      {"depthwise 5x5 [1,384,32,64]", {{1, 384, 32, 64}, {384, 1, 5, 5}},
       [](auto& in) { return conv_case(in, 1, 2, 384); }},
      {"depthwise 3x3 [1,512,32,64]", {{1, 512, 32, 64}, {512, 1, 3, 3}},
       [](auto& in) { return conv_case(in, 1, 1, 512); }},
      {"grouped 1x1 g=24 [1,384,32,64]", {{1, 384, 32, 64}, {384, 16, 1, 1}},
       [](auto& in) { return conv_case(in, 1, 0, 24); }},
      {"linear_attention [1,16,16,2048]", {{1, 16, 16, 2048}, {1, 16, 16, 2048}, {1, 16, 16, 2048}},
       [](auto& in) { return linear_attention(in[0], in[1], in[2]); }},
      {"batch_norm train [1,128,32,64]", {{1, 128, 32, 64}, {128}, {128}},
       [](auto& in) { return batch_norm_case(in, ActivationKind::none); }},
      {"batch_norm+hardswish train [16,64,56,56]", {{16, 64, 56, 56}, {64}, {64}},
       [](auto& in) { return batch_norm_case(in, ActivationKind::hardswish); }},
      // A stage-1 channel of the batch (16 x 112 x 112, 800 KB) is larger than some processors' L2.
      {"batch_norm+hardswish train [16,32,112,112]", {{16, 32, 112, 112}, {32}, {32}},
       [](auto& in) { return batch_norm_case(in, ActivationKind::hardswish); }},
      {"depthwise 3x3 s2 [16,64,112,112]", {{16, 64, 112, 112}, {64, 1, 3, 3}},
       [](auto& in) { return conv_case(in, 2, 1, 64); }},
      {"depthwise 3x3 [16,128,28,28]", {{16, 128, 28, 28}, {128, 1, 3, 3}},
       [](auto& in) { return conv_case(in, 1, 1, 128); }},
      {"conv2d 1x1 128->512 [16,128,7,7]", {{16, 128, 7, 7}, {512, 128, 1, 1}},
       [](auto& in) { return conv_case(in, 1, 0, 1); }},
      {"conv2d 1x1 256->64 [16,256,14,14]", {{16, 256, 14, 14}, {64, 256, 1, 1}},
       [](auto& in) { return conv_case(in, 1, 0, 1); }},
      {"conv2d 1x1 128->512 [16,128,14,14]", {{16, 128, 14, 14}, {512, 128, 1, 1}},
       [](auto& in) { return conv_case(in, 1, 0, 1); }},
      {"conv2d 1x1 512->128 [16,512,14,14]", {{16, 512, 14, 14}, {128, 512, 1, 1}},
       [](auto& in) { return conv_case(in, 1, 0, 1); }},
      {"conv2d 1x1 64->256 [16,64,28,28]", {{16, 64, 28, 28}, {256, 64, 1, 1}},
       [](auto& in) { return conv_case(in, 1, 0, 1); }},
      {"hardswish [1,512,32,64]", {{1, 512, 32, 64}}, [](auto& in) { return hardswish(in[0]); }},
      {"matmul [2048,128]x[128,512]", {{2048, 128}, {128, 512}},
       [](auto& in) { return matmul(in[0], in[1]); }},
  };
}

}  // namespace

int main(int argc, char** argv) {
  std::string only;
  bool list_only = false;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--list") list_only = true;
    else only = argv[i];
  }
  const std::vector<Case> all = cases();
  const bool exact = std::any_of(all.begin(), all.end(), [&](const Case& c) { return c.name == only; });
  auto selected = [&](const Case& c) {
    return only.empty() || (exact ? c.name == only : c.name.find(only) != std::string::npos);
  };
  if (list_only) {
    for (const Case& c : all)
      if (selected(c)) std::printf("%s\n", c.name.c_str());
    return 0;
  }
  Generator gen(2024);
  for (const Case& c : all) {
    if (!selected(c)) continue;
    std::vector<double> times;
    for (int it = 0; it < kWarmup + kRuns; ++it) {
      std::vector<Tensor> in;
      for (const Shape& s : c.shapes) in.push_back(randn(s, {}, &gen).requires_grad_());
      Tensor y = c.forward(in);
      Tensor gy = randn(y.sizes(), {}, &gen);
      y = Tensor();
      // Time a fresh forward + backward (the warm forward above only made the gradient's shape).
      auto t0 = std::chrono::steady_clock::now();
      Tensor out = c.forward(in);
      out.backward(gy);
      auto t1 = std::chrono::steady_clock::now();
      if (it >= kWarmup) times.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    std::sort(times.begin(), times.end());
    double median = times.size() % 2 ? times[times.size() / 2]
                                     : 0.5 * (times[times.size() / 2 - 1] + times[times.size() / 2]);
    std::printf("{\"op\": \"%s\", \"median_ms\": %.4f, \"runs\": %d, \"threads\": %d}\n", c.name.c_str(),
                median, kRuns, get_num_threads());
    std::fflush(stdout);
  }
  return 0;
}
