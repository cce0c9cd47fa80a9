// Data-parallel scaling: EfficientViT classification training steps of one global batch on this
// job's ranks (run it under mpirun for W > 1), one thread per rank unless told otherwise.
//
//   [mpirun -n W] bench_dist [--model efficientvit-b1] [--batch 16] [--size 224] [--micro 4]
//                            [--runs 5] [--threads 1] [--plain] [--no-overlap] [--bucket-mb 16]
//
// Each timed step: every rank draws the whole global batch from a generator of the step (fresh
// random inputs, the same on every rank), runs forward and backward on its micro-batches, reduces
// in the fixed tree (train/data_parallel.h) and takes an AdamW step. --plain times the ordinary
// one-batch step of a single process instead (no micro-batches, no reduction): the baseline
// bench/run_dist_bench.sh compares against. --no-overlap sends the gradient buckets only after the
// last backward (DataParallelOptions::overlap_backward off); --bucket-mb sets the MiB per
// gradient bucket sent during backward (config train.bucket_mb). Rank 0 prints one JSON line:
//   {"ranks": W, "micro_batches": K, "batch": B, "median_ms": step, "reduce_ms": reduction, "runs": n}
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/dist/communicator.h"
#include "core/generator.h"
#include "core/parallel.h"
#include "ops/loss.h"
#include "ops/shape.h"
#include "optim/adamw.h"
#include "train/data_parallel.h"
#include "zoo/models.h"

using namespace evit;
using Clock = std::chrono::steady_clock;

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }
}  // namespace

int main(int argc, char** argv) {
  std::string model_name = "efficientvit-b1";
  int64_t batch = 16, size = 224, micro = 4;
  int runs = 5, threads = 1;
  int64_t bucket = train::DataParallelOptions{}.bucket_elements;
  bool plain = false, overlap = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&] {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_dist: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return std::string(argv[++i]);
    };
    if (a == "--model") model_name = value();
    else if (a == "--batch") batch = std::stoll(value());
    else if (a == "--size") size = std::stoll(value());
    else if (a == "--micro") micro = std::stoll(value());
    else if (a == "--runs") runs = std::stoi(value());
    else if (a == "--threads") threads = std::stoi(value());
    else if (a == "--plain") plain = true;
    else if (a == "--no-overlap") overlap = false;
    else if (a == "--bucket-mb") bucket = train::bucket_elements(std::stod(value()));
    else {
      std::fprintf(stderr, "bench_dist: unknown argument '%s'\n", a.c_str());
      return 2;
    }
  }
  try {
    dist::Communicator& comm = dist::world();
    set_num_threads(threads);
    manual_seed(0);
    auto model = zoo::create_model(model_name, 1000);
    model->train();
    optim::AdamW opt({{model->named_parameters(), 1e-4, 0.05}});
    std::unique_ptr<train::DataParallelStep> dp;
    if (!plain) dp = std::make_unique<train::DataParallelStep>(*model, comm, micro,
                                                                   train::DataParallelOptions{.overlap_backward = overlap,
                                                                                              .bucket_elements = bucket});
    EVIT_CHECK(plain || batch % micro == 0, "bench_dist: --batch ", batch, " does not split into ", micro, " micro-batches");
    const int64_t per_micro = plain ? batch : batch / micro;
    std::vector<double> steps, reduces;
    constexpr int kWarmup = 2;
    for (int it = 0; it < kWarmup + runs; ++it) {
      Generator gen(1000 + static_cast<uint64_t>(it));
      const Tensor x = randn({batch, 3, size, size}, {}, &gen);
      const Tensor y = randint(0, 1000, {batch}, DType::i64, &gen);
      comm.barrier();
      const auto t0 = Clock::now();
      double reduce_ms = 0;
      opt.zero_grad();
      if (plain) {
        cross_entropy(model->forward(x), y).backward();
      } else {
        dp->begin_step();
        for (int64_t j = 0; j < dp->local_micro_batches(); ++j) {
          const int64_t begin = (dp->first_micro_batch() + j) * per_micro;
          Tensor loss = cross_entropy(model->forward(slice(x, 0, begin, begin + per_micro).contiguous()),
                                      slice(y, 0, begin, begin + per_micro).contiguous());
          const double v = loss.item<double>();
          loss.backward();
          dp->end_micro_batch(v);
        }
        const auto r0 = Clock::now();
        dp->finish_step();
        reduce_ms = ms_since(r0);
      }
      opt.step();
      const double ms = ms_since(t0);
      if (it >= kWarmup) steps.push_back(ms), reduces.push_back(reduce_ms);
    }
    if (comm.rank() == 0)
      std::printf("{\"ranks\": %d, \"micro_batches\": %lld, \"batch\": %lld, \"size\": %lld, \"threads\": %d, "
                  "\"median_ms\": %.1f, \"reduce_ms\": %.1f, \"runs\": %d}\n",
                  comm.size(), (long long)(plain ? 1 : micro), (long long)batch, (long long)size, threads,
                  median(steps), median(reduces), runs);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_dist: %s\n", e.what());
    if (auto* job = dist::world_if_started(); job && job->size() > 1) job->abort(1);
    return 1;
  }
}
