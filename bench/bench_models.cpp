// Whole-model timings: EfficientViT inference and training steps, and the EfficientViT-SAM image
// encoder (inference, and a stage-1 distillation step: MSE towards a teacher embedding), the evit
// side of bench/models_torch.py (same cases, names, warm-up, run count and timing rule).
//
//   bench_models [--device cpu|cuda] [--amp off|f16|bf16] [--profile] [--runs N] [--list] [CASE]
//
// CASE: a case's exact name runs that case alone; otherwise every case whose name contains it.
// --list prints the names of the cases CASE selects, one per line, and runs nothing
// (bench/run_model_bench.sh runs each case in its own process, alternating with PyTorch's).
//
// Output: one JSON line per case {"case": name, "median_ms": t, "runs": n, "gflop": f, "peak_mib": m}, f the
// case's floating-point work in 10^9 operations (2 per multiply-accumulate as the paper counts them
// (nn/macs.h); a training step counts 3 forward passes: the forward, and backward's two products per
// layer), which bench/print_table.py turns into a share of the machine's f32 GEMM peak (the
// "gemm peak" case: one 2048^3 product, timed the same way on both sides); m the
// peak resident memory of the case over the process's resident memory when the case began (CPU
// only; run one case per process, as `bench/run_model_bench.sh 2 "b1 train"` does, for a figure
// that no earlier case's cached blocks lower). On CUDA the inputs
// are made on the host and copied before the timed region, and every timed iteration ends with
// a device synchronize, so a time covers all the GPU work of that iteration; m is then the peak
// of device memory allocated during the case, weights, optimizer state and activations together
// (what PyTorch's torch.cuda.max_memory_allocated reports).
//
// --runs N times N iterations instead of 10 (to hold a sampling profiler such as `perf record` on
// the timed loop rather than on model construction); the comparison scripts keep the default.
// --profile (CUDA) runs one more iteration per case under the kernel profile
// (core/kernel_profile.h) and prints to stderr where its time went, by kernel slot.
#include <algorithm>
#include <optional>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "core/cuda.h"
#include "core/generator.h"
#include "core/kernel_profile.h"
#include "ops/linalg/gemm.h"
#include "core/parallel.h"
#include "ops/linalg.h"
#include "ops/loss.h"
#include "nn/macs.h"
#include "ops/autocast.h"
#include "optim/adamw.h"
#include "optim/grad_scaler.h"
#include "zoo/models.h"
#include "zoo/sam.h"

using namespace evit;

namespace {
constexpr int kWarmup = 3;
int g_runs = 10;  // --runs

// What a case times: the model's forward (infer), a classification training step (train), or the
// SAM image encoder alone, forward (sam_infer) or a distillation step (sam_distill).
enum class Kind { infer, train, sam_infer, sam_distill, gemm };

struct Case {
  const char* name;
  const char* model;
  Kind kind;
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

struct Setup {
  Device device;
  std::optional<DType> amp;
  bool profile = false;
  std::string case_name;  // the case being timed, for the profile's heading
};

void sync(const Setup& s) {
  if (s.device.is_cuda()) cuda::synchronize(s.device.index);
}

// Warm-ups, timed runs, and with --profile one extra profiled iteration.
int iterations(const Setup& s) { return kWarmup + g_runs + (s.profile ? 1 : 0); }
bool is_profiled(int it) { return it == kWarmup + g_runs; }

// Called just before iteration `it`'s timed region begins.
void begin_iteration(int it) {
  if (is_profiled(it)) kernel_profile::start();
}

// Called after iteration `it` ended with a sync: keeps a timed run's time, prints the profiled
// iteration's table.
void end_iteration(int it, Clock::time_point t0, std::vector<double>& times, const Setup& s) {
  const double ms = ms_since(t0);
  if (it >= kWarmup && !is_profiled(it)) times.push_back(ms);
  if (!is_profiled(it)) return;
  const auto entries = kernel_profile::stop();
  double in_slots = 0;
  for (const auto& e : entries) in_slots += e.total_ms;
  std::fprintf(stderr, "profile: %s, one iteration of %.1f ms with the device synchronized around each kernel slot call\n",
               s.case_name.c_str(), ms);
  std::fprintf(stderr, "  %6s %9s %6s  %s\n", "share", "ms", "calls", "slot");
  for (size_t i = 0; i < entries.size() && i < 15; ++i)
    std::fprintf(stderr, "  %5.1f%% %9.2f %6lld  %s\n", 100 * entries[i].total_ms / ms, entries[i].total_ms,
                 static_cast<long long>(entries[i].calls), entries[i].slot.c_str());
  std::fprintf(stderr, "  %5.1f%% %9.2f %6s  (host work between slot calls: autograd, allocator, module code)\n",
               100 * (ms - in_slots) / ms, ms - in_slots, "");
}

std::vector<double> time_infer(nn::Module& m, const Case& c, Generator& gen, const Setup& s) {
  m.eval();
  NoGradGuard no_grad;
  std::vector<double> times;
  for (int it = 0; it < iterations(s); ++it) {
    Tensor x = randn({c.n, 3, c.h, c.w}, {}, &gen).to(s.device);
    sync(s);
    begin_iteration(it);
    auto t0 = Clock::now();
    {
      std::optional<AutocastGuard> ac;
      if (s.amp) ac.emplace(*s.amp);
      m.forward(x);
    }
    sync(s);
    end_iteration(it, t0, times, s);
  }
  return times;
}

std::vector<double> time_train(zoo::Model& m, const Case& c, Generator& gen, const Setup& s) {
  m.train();
  optim::AdamW opt({{m.named_parameters(), 1e-4, 0.05}});
  optim::GradScaler scaler;
  std::vector<double> times;
  for (int it = 0; it < iterations(s); ++it) {
    Tensor x = randn({c.n, 3, c.h, c.w}, {}, &gen).to(s.device);
    Tensor y = randint(0, 1000, {c.n}, DType::i64, &gen).to(s.device);
    sync(s);
    begin_iteration(it);
    auto t0 = Clock::now();
    opt.zero_grad();
    Tensor loss;
    {
      std::optional<AutocastGuard> ac;
      if (s.amp) ac.emplace(*s.amp);
      loss = cross_entropy(m.forward(x), y);
    }
    if (s.amp == DType::f16) {  // f16 trains with a loss scaler, as PyTorch users do
      scaler.scale(loss).backward();
      scaler.step(opt);
      scaler.update();
    } else {
      loss.backward();
      opt.step();
    }
    sync(s);
    end_iteration(it, t0, times, s);
  }
  return times;
}

// Stage-1 SAM distillation: the encoder's embedding against a random teacher embedding, MSE,
// backward, AdamW (the sam_distill recipe's lr and weight decay) over the encoder's parameters.
std::vector<double> time_sam_distill(nn::Module& encoder, const Case& c, Generator& gen, const Setup& s) {
  encoder.train();
  optim::AdamW opt({{encoder.named_parameters(), 1e-3, 0.1}});
  std::vector<double> times;
  for (int it = 0; it < iterations(s); ++it) {
    Tensor x = randn({c.n, 3, c.h, c.w}, {}, &gen).to(s.device);
    Tensor target = randn({c.n, 256, 64, 64}, {}, &gen).to(s.device);
    sync(s);
    begin_iteration(it);
    auto t0 = Clock::now();
    opt.zero_grad();
    mse_loss(encoder.forward(x), target).backward();
    opt.step();
    sync(s);
    end_iteration(it, t0, times, s);
  }
  return times;
}
// The f32 GEMM peak: C = A·B for n x n matrices (h = w = n), fresh random A and B each time.
std::vector<double> time_gemm(const Case& c, Generator& gen, const Setup& s) {
  std::vector<double> times;
  for (int it = 0; it < iterations(s); ++it) {
    Tensor a = randn({c.n, c.n}, {}, &gen).to(s.device), b = randn({c.n, c.n}, {}, &gen).to(s.device);
    sync(s);
    begin_iteration(it);
    auto t0 = Clock::now();
    matmul(a, b);
    sync(s);
    end_iteration(it, t0, times, s);
  }
  return times;
}

// 10^9 floating-point operations of one forward of `m` on a batch of the case (2 per MAC).
double forward_gflop(nn::Module& m, const Case& c) {
  NoGradGuard no_grad;
  const bool training = m.is_training();
  m.eval();
  nn::MacCounter counter;
  m.forward(zeros({1, 3, c.h, c.w}));
  if (training) m.train();
  return 2e-9 * static_cast<double>(counter.total()) * static_cast<double>(c.n);
}

// A field of /proc/self/status in MiB ("VmRSS": resident now, "VmHWM": the resident peak since
// the last reset_peak_rss()); -1 where the file is not there.
double status_mib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) / 1024.0;
  return -1;
}

// Starts a new resident peak at the current resident size (Linux: "5" to clear_refs).
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

}  // namespace

int main(int argc, char** argv) {
  std::string only;
  bool list_only = false;
  Setup setup{kCPU, std::nullopt, false, {}};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--device" && i + 1 < argc) {
      setup.device = Device(std::string(argv[++i]));
    } else if (a == "--amp" && i + 1 < argc) {
      std::string v = argv[++i];
      if (v == "f16") setup.amp = DType::f16;
      else if (v == "bf16") setup.amp = DType::bf16;
      else if (v != "off") return std::fprintf(stderr, "--amp: expected off, f16 or bf16\n"), 2;
    } else if (a == "--profile") {
      setup.profile = true;
    } else if (a == "--list") {
      list_only = true;
    } else if (a == "--runs" && i + 1 < argc) {
      g_runs = std::atoi(argv[++i]);
      if (g_runs < 1) return std::fprintf(stderr, "--runs: expected a positive count\n"), 2;
    } else {
      only = a;
    }
  }
  // CPU cases follow the CPU comparison of docs/performance.md; GPU cases use batch sizes that
  // keep an H100 busy (the GPU comparison of tools/gpu_check.sh).
  const std::vector<Case> cpu_cases = {
      {"b0 infer bs1 224", "efficientvit-b0", Kind::infer, 1, 224, 224},
      {"b1 infer bs1 224", "efficientvit-b1", Kind::infer, 1, 224, 224},
      {"b0 train bs16 224", "efficientvit-b0", Kind::train, 16, 224, 224},
      {"b1 train bs16 224", "efficientvit-b1", Kind::train, 16, 224, 224},
      {"seg-b0 infer bs1 512x1024", "efficientvit-seg-b0-cityscapes", Kind::infer, 1, 512, 1024},
      {"seg-b1 infer bs1 512x1024", "efficientvit-seg-b1-cityscapes", Kind::infer, 1, 512, 1024},
      {"sam-l0 encoder infer bs1 512", "efficientvit-sam-l0", Kind::sam_infer, 1, 512, 512},
      {"sam-xl0 encoder infer bs1 1024", "efficientvit-sam-xl0", Kind::sam_infer, 1, 1024, 1024},
      {"sam-l0 distill step bs2 512", "efficientvit-sam-l0", Kind::sam_distill, 2, 512, 512},
      {"l1 train bs8 224", "efficientvit-l1", Kind::train, 8, 224, 224},
      {"gemm peak 2048", "", Kind::gemm, 2048, 2048, 2048},
  };
  const std::vector<Case> gpu_cases = {
      {"b0 train bs64 224", "efficientvit-b0", Kind::train, 64, 224, 224},
      {"b1 train bs64 224", "efficientvit-b1", Kind::train, 64, 224, 224},
      {"seg-b1 infer bs1 512x1024", "efficientvit-seg-b1-cityscapes", Kind::infer, 1, 512, 1024},
      {"seg-b1 infer bs8 512x1024", "efficientvit-seg-b1-cityscapes", Kind::infer, 8, 512, 1024},
      {"l1 train bs64 224", "efficientvit-l1", Kind::train, 64, 224, 224},
      {"sam-l0 encoder infer bs1 512", "efficientvit-sam-l0", Kind::sam_infer, 1, 512, 512},
      {"sam-l0 encoder infer bs8 512", "efficientvit-sam-l0", Kind::sam_infer, 8, 512, 512},
      {"gemm peak 4096", "", Kind::gemm, 4096, 4096, 4096},
  };
  const auto& cases = setup.device.is_cuda() ? gpu_cases : cpu_cases;
  const bool exact = std::any_of(cases.begin(), cases.end(), [&](const Case& c) { return only == c.name; });
  auto selected = [&](const Case& c) {
    return only.empty() || (exact ? only == c.name : std::string(c.name).find(only) != std::string::npos);
  };
  if (list_only) {
    for (const Case& c : cases)
      if (selected(c)) std::printf("%s\n", c.name);
    return 0;
  }
  Generator gen(7);
  for (const Case& c : cases) {
    if (!selected(c)) continue;
    setup.case_name = c.name;
    reset_peak_rss();
    const double baseline_mib = status_mib("VmRSS");
    const bool on_gpu = setup.device.is_cuda();
    std::vector<double> times;
    double gflop = 0;
    if (c.kind == Kind::gemm) {
      times = time_gemm(c, gen, setup);
      gflop = 2e-9 * static_cast<double>(c.n) * static_cast<double>(c.n) * static_cast<double>(c.n);
    } else {
      auto model = zoo::create_model(c.model);
      nn::Module* timed = model.get();
      if (c.kind == Kind::sam_infer || c.kind == Kind::sam_distill)
        timed = dynamic_cast<zoo::EfficientViTSam&>(*model).image_encoder.get();
      gflop = forward_gflop(*timed, c) * (c.kind == Kind::train || c.kind == Kind::sam_distill ? 3 : 1);
      model->to(setup.device);
      if (on_gpu) cuda::reset_peak_memory_stats(setup.device.index);
      if (c.kind == Kind::infer || c.kind == Kind::sam_infer) times = time_infer(*timed, c, gen, setup);
      else if (c.kind == Kind::train) times = time_train(*model, c, gen, setup);
      else times = time_sam_distill(*timed, c, gen, setup);
    }
    const double peak_mib =
        on_gpu ? static_cast<double>(cuda::memory_stats(setup.device.index).peak_allocated_bytes) / (1 << 20)
               : status_mib("VmHWM") - baseline_mib;
    std::printf("{\"case\": \"%s\", \"median_ms\": %.3f, \"runs\": %d, \"threads\": %d, \"gemm\": \"%s\", "
                "\"gflop\": %.3f, \"peak_mib\": %.1f}\n",
                c.name, median(times), g_runs, get_num_threads(), detail::gemm_backend().c_str(), gflop, peak_mib);
    std::fflush(stdout);
  }
  return 0;
}
