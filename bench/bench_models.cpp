// Whole-model timings: EfficientViT inference and training steps, the evit side of
// bench/models_torch.py (same cases, names, warm-up, run count and timing rule).
// Output: one JSON line per case {"case": name, "median_ms": t, "runs": n}.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "core/generator.h"
#include "core/parallel.h"
#include "ops/loss.h"
#include "optim/adamw.h"
#include "zoo/models.h"

using namespace evit;

namespace {
constexpr int kWarmup = 3;
constexpr int kRuns = 10;

struct Case {
  const char* name;
  const char* model;
  bool train;
  int64_t n, h, w;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::vector<double> time_infer(zoo::Model& m, const Case& c, Generator& gen) {
  m.eval();
  NoGradGuard no_grad;
  std::vector<double> times;
  for (int it = 0; it < kWarmup + kRuns; ++it) {
    Tensor x = randn({c.n, 3, c.h, c.w}, {}, &gen);
    auto t0 = Clock::now();
    m.forward(x);
    if (it >= kWarmup) times.push_back(ms_since(t0));
  }
  return times;
}

std::vector<double> time_train(zoo::Model& m, const Case& c, Generator& gen) {
  m.train();
  optim::AdamW opt({{m.named_parameters(), 1e-4, 0.05}});
  std::vector<double> times;
  for (int it = 0; it < kWarmup + kRuns; ++it) {
    Tensor x = randn({c.n, 3, c.h, c.w}, {}, &gen);
    Tensor y = randint(0, 1000, {c.n}, DType::i64, &gen);
    auto t0 = Clock::now();
    opt.zero_grad();
    Tensor loss = cross_entropy(m.forward(x), y);
    loss.backward();
    opt.step();
    if (it >= kWarmup) times.push_back(ms_since(t0));
  }
  return times;
}
}  // namespace

int main(int argc, char** argv) {
  std::string only = argc > 1 ? argv[1] : "";
  const Case cases[] = {
      {"b0 infer bs1 224", "efficientvit-b0", false, 1, 224, 224},
      {"b1 infer bs1 224", "efficientvit-b1", false, 1, 224, 224},
      {"b0 train bs16 224", "efficientvit-b0", true, 16, 224, 224},
      {"b1 train bs16 224", "efficientvit-b1", true, 16, 224, 224},
      {"seg-b0 infer bs1 512x1024", "efficientvit-seg-b0-cityscapes", false, 1, 512, 1024},
      {"seg-b1 infer bs1 512x1024", "efficientvit-seg-b1-cityscapes", false, 1, 512, 1024},
  };
  Generator gen(7);
  for (const Case& c : cases) {
    if (!only.empty() && std::string(c.name).find(only) == std::string::npos) continue;
    auto model = zoo::create_model(c.model);
    auto times = c.train ? time_train(*model, c, gen) : time_infer(*model, c, gen);
    std::printf("{\"case\": \"%s\", \"median_ms\": %.3f, \"runs\": %d, \"threads\": %d}\n", c.name,
                median(times), kRuns, get_num_threads());
    std::fflush(stdout);
  }
  return 0;
}
