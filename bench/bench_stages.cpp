// Where a segmentation model's inference goes, part by part: the input stem, each backbone stage
// and the head, timed inside one forward pass (eval, no grad, CPU), the evit side of
// bench/stages_torch.py (the same parts of the reference model, timed by forward hooks).
//
//   bench_stages [--runs N] [--list] [CASE]
//
// CASE: a case's exact name ("seg-b0 512x1024", "seg-b1 512x1024") or a part of it; --list prints
// the names of the cases CASE selects. Output: one JSON line per part of each case,
// {"case": "<case> <part>", "median_ms": t, "runs": n}, the parts "stem", "stage1".."stage4",
// "head" and "total" (the whole pass); t the median over the runs (after 3 warm-up passes) of that
// part's time, every pass on a fresh random input. bench/run_stage_bench.sh alternates the two
// sides, one process per case, and prints the table.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "core/generator.h"
#include "zoo/backbone.h"
#include "zoo/heads.h"
#include "zoo/models.h"

using namespace evit;

namespace {
constexpr int kWarmup = 3;

struct Case {
  const char* name;
  const char* model;
  int64_t h, w;
};
const Case kCases[] = {
    {"seg-b0 512x1024", "efficientvit-seg-b0-cityscapes", 512, 1024},
    {"seg-b1 512x1024", "efficientvit-seg-b1-cityscapes", 512, 1024},
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

void run_case(const Case& c, int runs) {
  auto model = std::dynamic_pointer_cast<zoo::EfficientViTSeg>(zoo::create_model(c.model));
  if (!model) throw std::runtime_error(std::string(c.model) + " is not a segmentation model");
  model->eval();
  // The B backbone's parts, as its forward_features runs them.
  const std::shared_ptr<nn::Module> stem = model->backbone->child("input_stem");
  const auto stages = std::dynamic_pointer_cast<nn::ModuleList>(model->backbone->child("stages"));
  if (!stem || !stages) throw std::runtime_error(std::string(c.model) + ": not an EfficientViT-B backbone");
  NoGradGuard no_grad;
  Generator gen(1234);
  std::map<std::string, std::vector<double>> times;
  std::vector<std::string> order;  // the parts in the order they run
  using Clock = std::chrono::steady_clock;
  for (int it = 0; it < kWarmup + runs; ++it) {
    const Tensor x = randn({1, 3, c.h, c.w}, {}, &gen);
    auto t = Clock::now();
    const auto start = t;
    auto lap = [&](const std::string& part) {
      const auto now = Clock::now();
      if (it < kWarmup) {
        if (it == 0) order.push_back(part);
      } else {
        times[part].push_back(std::chrono::duration<double, std::milli>(now - t).count());
      }
      t = now;
    };
    zoo::FeatureMap f;
    f["input"] = x;
    Tensor y = stem->forward(x);
    lap("stem");
    f["stage0"] = y;
    for (size_t i = 0; i < stages->size(); ++i) {
      y = (*stages)[i]->forward(y);
      lap("stage" + std::to_string(i + 1));
      f["stage" + std::to_string(i + 1)] = y;
    }
    f["stage_final"] = y;
    const Tensor out = model->head->forward_features(f);
    lap("head");
    t = start;
    lap("total");
  }
  for (const std::string& part : order)
    std::printf("{\"case\": \"%s %s\", \"median_ms\": %.3f, \"runs\": %d}\n", c.name, part.c_str(),
                median(times[part]), runs);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 20;
  bool list = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--list") {
      list = true;
    } else if (a.rfind("--", 0) == 0) {
      std::fprintf(stderr, "bench_stages: unknown option %s\nusage: bench_stages [--runs N] [--list] [CASE]\n", a.c_str());
      return 2;
    } else {
      only = a;
    }
  }
  try {
    for (const Case& c : kCases) {
      const std::string name = c.name;
      if (!only.empty() && name != only && name.find(only) == std::string::npos) continue;
      if (list)
        std::printf("%s\n", c.name);
      else
        run_case(c, runs);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_stages: %s\n", e.what());
    return 1;
  }
  return 0;
}
