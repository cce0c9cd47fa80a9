// Data-parallel building blocks: the fixed pairwise summation tree, the all-reduce over an
// in-process group of ranks (no MPI needed), the micro-batch step, and loader sharding. The
// multi-process checks (mpirun with 2 and 4 ranks, bitwise training runs, a killed rank) are in
// tests/dist/dist_checks.sh; the test tagged [mpi] here also runs under mpirun there.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <thread>

#include <catch2/catch.hpp>

#include "autograd/grad_mode.h"
#include "core/dist/communicator.h"
#include "core/dist/in_process_group.h"
#include "core/dist/ordered_gather.h"
#include "core/dist/tree_reduce.h"
#include "data/image.h"
#include "data/loader.h"
#include "data/synthetic.h"
#include "train/evaluator.h"
#include "zoo/models.h"
#include "zoo/sam.h"
#include "nn/container.h"
#include "nn/conv.h"
#include "nn/norm.h"
#include "ops/ops.h"
#include "support/sa1b_data.h"
#include "support/sam_distill_data.h"
#include "support/test_util.h"
#include "tests/support/cuda_compare.h"
#include "train/config.h"
#include "train/data_parallel.h"
#include "train/sam_distill.h"
#include "train/sam_eval.h"
#include "train/sam_finetune.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace evit;

namespace {

// K leaves of n values whose sum depends on the order of the additions: magnitudes from 1e-3 to
// 1e8 with both signs, so that small terms vanish against large ones in some orders and not others.
std::vector<std::vector<float>> order_sensitive_leaves(int k, int n, uint64_t seed) {
  Generator g(seed);
  std::vector<std::vector<float>> leaves(static_cast<size_t>(k), std::vector<float>(static_cast<size_t>(n)));
  for (auto& leaf : leaves)
    for (auto& v : leaf) {
      const double u = g.uniform_double();
      const double magnitude = std::pow(10.0, -3.0 + 11.0 * g.uniform_double());
      v = static_cast<float>((u < 0.5 ? -1.0 : 1.0) * magnitude);
    }
  return leaves;
}

// The balanced tree written out recursively: the definition PairwiseSum must match.
std::vector<float> recursive_tree(const std::vector<std::vector<float>>& leaves, size_t begin, size_t end) {
  if (end - begin == 1) return leaves[begin];
  const size_t mid = begin + (end - begin) / 2;
  std::vector<float> a = recursive_tree(leaves, begin, mid), b = recursive_tree(leaves, mid, end);
  for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
  return a;
}

Tensor square_mean(const Tensor& y) { return mean(mul(y, y)); }

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

Tensor leaf(const std::vector<float>& values, Device device = kCPU) {
  return from_vector(values, {static_cast<int64_t>(values.size())}).to(device);
}

// Rank `rank` of `size`: sums its contiguous block of the leaves pairwise, then all-reduces.
std::vector<float> rank_sum(dist::Communicator& comm, const std::vector<std::vector<float>>& leaves,
                            int64_t bucket = int64_t{1} << 22, Device device = kCPU) {
  const size_t per_rank = leaves.size() / static_cast<size_t>(comm.size());
  dist::PairwiseSum sum;
  for (size_t j = 0; j < per_rank; ++j) sum.add(leaf(leaves[static_cast<size_t>(comm.rank()) * per_rank + j], device));
  const Tensor v = sum.take();
  dist::tree_allreduce_sum(comm, v, bucket);
  return v.to(kCPU).to_vector<float>();
}

}  // namespace

TEST_CASE("pairwise sums follow one balanced tree, whatever order would give", "[dist]") {
  // 1e8 + 1 rounds back to 1e8 in f32: left to right gives 1, the tree ((1e8 + 1) + (-1e8 + 1)) 0.
  dist::PairwiseSum sum;
  for (float v : {1e8f, 1.0f, -1e8f, 1.0f}) sum.add(leaf({v}));
  REQUIRE(sum.take().to_vector<float>() == std::vector<float>{0.0f});
  float left_to_right = 0;
  for (float v : {1e8f, 1.0f, -1e8f, 1.0f}) left_to_right += v;
  REQUIRE(left_to_right == 1.0f);  // the order matters for these values

  auto leaves = order_sensitive_leaves(16, 257, 3);
  for (auto& values : leaves) sum.add(leaf(values));
  REQUIRE(same_bits(sum.take().to_vector<float>(), recursive_tree(leaves, 0, leaves.size())));

  sum.add(leaf({1.0f}));
  REQUIRE_THROWS_WITH(sum.add(leaf({1.0f, 2.0f})), Catch::Contains("leaf 1"));
  sum.add(leaf({2.0f}));
  sum.add(leaf({3.0f}));
  REQUIRE_THROWS_WITH(sum.take(), Catch::Contains("3 leaves") && Catch::Contains("power of two"));
}

TEST_CASE("the tree all-reduce gives every rank one process's bits on 1, 2, 4 and 8 ranks", "[dist]") {
  const auto leaves = order_sensitive_leaves(8, 1000, 11);
  const std::vector<float> reference = recursive_tree(leaves, 0, leaves.size());
  std::vector<float> sequential = leaves[0];
  for (size_t k = 1; k < leaves.size(); ++k)
    for (size_t i = 0; i < sequential.size(); ++i) sequential[i] += leaves[k][i];
  REQUIRE_FALSE(same_bits(sequential, reference));  // another order would be caught
  for (int w : {1, 2, 4, 8}) {
    auto ranks = dist::in_process_group(w);
    std::vector<std::vector<float>> results(static_cast<size_t>(w));
    std::vector<std::thread> threads;
    // Buckets of 97 values: the last one partial, to show bucketing changes no bit.
    for (int r = 0; r < w; ++r)
      threads.emplace_back([&, r] { results[static_cast<size_t>(r)] = rank_sum(*ranks[static_cast<size_t>(r)], leaves, 97); });
    for (auto& t : threads) t.join();
    for (int r = 0; r < w; ++r) {
      INFO("world " << w << ", rank " << r);
      REQUIRE(same_bits(results[static_cast<size_t>(r)], reference));
    }
  }
}

TEST_CASE("in-process exchanges complete late, as MPI's nonblocking ones do", "[dist]") {
  auto ranks = dist::in_process_group(2);
  std::vector<float> send0{1, 2}, recv0(2, 0), send1{3, 4}, recv1(2, 0);
  auto first = ranks[0]->start_exchange(1, send0.data(), recv0.data(), 2 * sizeof(float));
  REQUIRE_FALSE(first->test());  // rank 1 has not started its side
  send0[1] = 5;  // the peer reads the sender's buffer when it takes the message, as MPI may
  auto second = ranks[1]->start_exchange(0, send1.data(), recv1.data(), 2 * sizeof(float));
  REQUIRE_FALSE(first->test());  // rank 0 has its values, but rank 1 has not taken rank 0's yet
  REQUIRE(recv0 == std::vector<float>{3, 4});
  REQUIRE(second->test());
  REQUIRE(first->test());
  REQUIRE(recv1 == std::vector<float>{1, 5});
}

TEST_CASE("the tree all-reduce over this job's ranks equals one process's sum", "[dist][mpi]") {
  // Under plain ctest this is a one-rank job; tests/dist/dist_checks.sh runs it with mpirun -n 2
  // and -n 4 over shared memory and TCP.
  dist::Communicator& comm = dist::world();
  const auto leaves = order_sensitive_leaves(8, 1 << 12, 5);
  REQUIRE(same_bits(rank_sum(comm, leaves, 1000), recursive_tree(leaves, 0, leaves.size())));
  std::vector<float> four;
  for (float v : {1e8f, 1.0f, -1e8f, 1.0f}) four.push_back(v);
  std::vector<std::vector<float>> singles;
  for (float v : four) singles.push_back({v});
  REQUIRE(rank_sum(comm, singles) == std::vector<float>{0.0f});
  Tensor t = full({3}, comm.rank() == 0 ? 7.0 : -1.0);
  dist::broadcast_tensors(comm, {t});
  REQUIRE(t.to_vector<float>() == std::vector<float>{7, 7, 7});
  // Each machine numbers its own ranks from 0 (a rank trains on cuda:<local rank>), as the
  // launcher does: Open MPI and MPICH tell each process its number.
  for (const char* launcher_says : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID"})
    if (const char* local = std::getenv(launcher_says)) REQUIRE(comm.local_rank() == std::atoi(local));
  // The library's all-reduce (train.allreduce = "library"): exact here (small integers, any
  // order), in pieces of any length.
  std::vector<float> mine(1000);
  for (size_t i = 0; i < mine.size(); ++i) mine[i] = static_cast<float>((comm.rank() + 1) * static_cast<int>(i % 7));
  comm.library_allreduce_sum(mine.data(), mine.size());
  const int w = comm.size();
  for (size_t i = 0; i < mine.size(); ++i)
    REQUIRE(mine[i] == static_cast<float>(w * (w + 1) / 2 * static_cast<int>(i % 7)));
  comm.barrier();
}

TEST_CASE("the library all-reduce sums in an order of its own: the same on every rank, not the tree's", "[dist]") {
  // 1e8, 1, -1e8, 1 on 4 ranks: the tree gives (1e8 + 1) + (-1e8 + 1) = 0 in f32; left to right
  // gives ((1e8 + 1) - 1e8) + 1 = 1. Every rank gets the same value either way.
  const float values[4] = {1e8f, 1.0f, -1e8f, 1.0f};
  auto ranks = dist::in_process_group(4);
  std::vector<float> tree(4), library(4);
  std::vector<std::thread> threads;
  for (int r = 0; r < 4; ++r)
    threads.emplace_back([&, r] {
      std::vector<float> a{values[r]}, b{values[r]};
      dist::tree_allreduce_sum(*ranks[static_cast<size_t>(r)], std::span<float>(a));
      ranks[static_cast<size_t>(r)]->library_allreduce_sum(b.data(), b.size());
      tree[static_cast<size_t>(r)] = a[0];
      library[static_cast<size_t>(r)] = b[0];
    });
  for (auto& t : threads) t.join();
  REQUIRE(tree == std::vector<float>(4, 0.0f));
  REQUIRE(library == std::vector<float>(4, 1.0f));
}

TEST_CASE("the fixed tree needs a power-of-two job and rank 0's tensors reach every rank", "[dist]") {
  auto three = dist::in_process_group(3);
  std::vector<float> v{1.0f};
  REQUIRE_THROWS_WITH(dist::tree_allreduce_sum(*three[0], std::span<float>(v)), Catch::Contains("3 ranks") && Catch::Contains("power of two"));

  auto ranks = dist::in_process_group(4);
  std::vector<Tensor> tensors;
  for (int r = 0; r < 4; ++r) tensors.push_back(full({2, 3}, static_cast<double>(r + 1)));
  std::vector<std::thread> threads;
  for (int r = 0; r < 4; ++r)
    threads.emplace_back([&, r] { dist::broadcast_tensors(*ranks[static_cast<size_t>(r)], {tensors[static_cast<size_t>(r)]}); });
  for (auto& t : threads) t.join();
  for (auto& t : tensors) REQUIRE(t.to_vector<float>() == std::vector<float>(6, 1.0f));
}

TEST_CASE("tensor sums: f64 and i64 trees, buckets of views, clear errors for mismatched tensors", "[dist]") {
  auto ranks = dist::in_process_group(2);
  // Rank r holds r + 1 in every element; buckets of 3 over 10 values (the last one partial) are
  // views into the tensor, summed in place.
  std::vector<Tensor> doubles, counts;
  for (int r = 0; r < 2; ++r) {
    doubles.push_back(full({10}, 0.25 * (r + 1), DType::f64));
    counts.push_back(full({10}, static_cast<double>(r + 1), DType::i64));
  }
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      dist::tree_allreduce_sum(*ranks[static_cast<size_t>(r)], doubles[static_cast<size_t>(r)], 3);
      dist::tree_allreduce_sum(*ranks[static_cast<size_t>(r)], counts[static_cast<size_t>(r)], 3);
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < 2; ++r) {
    REQUIRE(doubles[static_cast<size_t>(r)].to_vector<double>() == std::vector<double>(10, 0.75));
    REQUIRE(counts[static_cast<size_t>(r)].to_vector<int64_t>() == std::vector<int64_t>(10, 3));
  }
  dist::SingleProcess one;
  REQUIRE_THROWS_WITH(one.exchange_tensor(0, zeros({3}), zeros({4})), Catch::Contains("receives into"));
  REQUIRE_THROWS_WITH(dist::tree_allreduce_sum(one, zeros({2, 3})), Catch::Contains("1-D"));
  REQUIRE_THROWS_WITH(one.library_allreduce_tensor(zeros({3}, DType::f64)), Catch::Contains("f32"));
  REQUIRE_THROWS_WITH(dist::add_into(zeros({3}), zeros({3}, DType::f64)), Catch::Contains("cannot add"));
  // One process exchanging with itself gets its own values back.
  const Tensor sent = arange(int64_t{5}, DType::f32), got = zeros({5});
  one.exchange_tensor(0, sent, got);
  REQUIRE(got.to_vector<float>() == sent.to_vector<float>());
}

TEST_CASE("CUDA gradients travel through NCCL only when asked or when every rank has a GPU of its own", "[dist]") {
  dist::SingleProcess one;
  // CPU training and "host" keep the job's communicator; "auto" with one rank has nothing to send.
  REQUIRE(train::gradient_communicator(one, kCPU, "nccl") == nullptr);
  REQUIRE(train::gradient_communicator(one, Device(DeviceType::cuda, 0), "host") == nullptr);
  REQUIRE(train::gradient_communicator(one, Device(DeviceType::cuda, 0), "auto") == nullptr);
  if (!dist::nccl_available()) {
    REQUIRE_THROWS_WITH(train::gradient_communicator(one, Device(DeviceType::cuda, 0), "nccl"),
                        Catch::Contains("gpu_transport") && Catch::Contains("no NCCL"));
    REQUIRE_THROWS_WITH(dist::make_nccl_communicator(one, Device(DeviceType::cuda, 0)), Catch::Contains("without NCCL"));
  } else if (!cuda::is_available()) {
    // NCCL built in, no GPU here: every rank would share the none there are.
    REQUIRE_THROWS_WITH(train::gradient_communicator(one, Device(DeviceType::cuda, 0), "nccl"),
                        Catch::Contains("gpu_transport") && Catch::Contains("share a GPU"));
  }
  REQUIRE_THROWS_WITH(train::gradient_communicator(one, Device(DeviceType::cuda, 0), "ring"),
                      Catch::Contains("gpu_transport"));
}

TEST_CASE("summation trees on the GPU have the CPU's bits, through host memory and through NCCL", "[cuda][.]") {
  EVIT_REQUIRE_GPU();
  const auto leaves = order_sensitive_leaves(8, 1000, 13);
  const std::vector<float> reference = recursive_tree(leaves, 0, leaves.size());
  for (int w : {1, 2, 4}) {
    auto ranks = dist::in_process_group(w);
    std::vector<std::vector<float>> results(static_cast<size_t>(w));
    std::vector<std::thread> threads;
    for (int r = 0; r < w; ++r)
      threads.emplace_back([&, r] {
        results[static_cast<size_t>(r)] = rank_sum(*ranks[static_cast<size_t>(r)], leaves, 97, test::cuda0());
      });
    for (auto& t : threads) t.join();
    for (int r = 0; r < w; ++r) {
      INFO("world " << w << ", rank " << r << ", leaves on cuda:0, exchanged through host memory");
      REQUIRE(same_bits(results[static_cast<size_t>(r)], reference));
    }
  }
  // f64 and i64 accumulate on the GPU too (sharded metrics).
  const Tensor d = full({5}, 0.5, TensorOptions(DType::f64, test::cuda0()));
  dist::add_into(d, full({5}, 0.25, TensorOptions(DType::f64, test::cuda0())));
  REQUIRE(d.to(kCPU).to_vector<double>() == std::vector<double>(5, 0.75));
  if (!dist::nccl_available()) {
    WARN("this build has no NCCL: the NCCL transport was not checked");
    return;
  }
  // One rank with NCCL: its exchange with itself, broadcast and library all-reduce go GPU to GPU.
  dist::SingleProcess one;
  auto nccl = dist::make_nccl_communicator(one, test::cuda0());
  REQUIRE_THAT(nccl->gpu_transport(), Catch::Contains("NCCL"));
  REQUIRE(nccl->size() == 1);
  REQUIRE(rank_sum(*nccl, leaves, 97, test::cuda0()) == reference);
  const Tensor sent = arange(int64_t{6}, TensorOptions(DType::f32, test::cuda0()));
  const Tensor got = zeros({6}, TensorOptions(DType::f32, test::cuda0()));
  nccl->exchange_tensor(0, sent, got);
  REQUIRE(got.to(kCPU).to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4, 5});
  nccl->broadcast_tensor(got, 0);
  nccl->library_allreduce_tensor(got);
  REQUIRE(got.to(kCPU).to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4, 5});
  // NCCL runs on a stream of its own: an exchange started behind a queue of kernels carries the
  // values they leave, and completes (test() and wait()) without blocking the compute stream.
  REQUIRE(nccl->device_exchanges_overlap_compute());
  REQUIRE_FALSE(one.device_exchanges_overlap_compute());
  Tensor queued = zeros({int64_t{1} << 22}, TensorOptions(DType::f32, test::cuda0()));
  for (int i = 0; i < 40; ++i) add_(queued, 1.0);
  const Tensor arrived = full({int64_t{1} << 22}, -1.0, TensorOptions(DType::f32, test::cuda0()));
  auto pending = nccl->start_exchange_tensor(0, queued, arrived);
  while (!pending->test()) {
  }
  pending->wait();
  const std::vector<float> values = arrived.to(kCPU).to_vector<float>();
  REQUIRE(std::all_of(values.begin(), values.end(), [](float v) { return v == 40.0f; }));
  // CPU tensors still go through the host communicator.
  const Tensor host_got = zeros({6});
  nccl->exchange_tensor(0, arange(int64_t{6}, DType::f32), host_got);
  REQUIRE(host_got.to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4, 5});
}

TEST_CASE("a micro-batch step averages gradients in the tree and updates BatchNorm once", "[dist]") {
  test::ThreadCountGuard threads;
  auto make = [] {
    Generator g(4);
    return std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
        std::make_shared<nn::Conv2d>(nn::Conv2dOptions{3, 4, 3, 1, 1}, &g), std::make_shared<nn::BatchNorm2d>(4)});
  };
  auto model = make(), reference = make();
  model->train();
  reference->train();
  Generator g(9);
  const Tensor x = randn({8, 3, 5, 5}, {}, &g);
  dist::SingleProcess one;
  train::DataParallelStep step(*model, one, 4);
  REQUIRE(step.local_micro_batches() == 4);
  step.begin_step();
  std::vector<double> losses;
  for (int k = 0; k < 4; ++k) {
    Tensor loss = square_mean(model->forward(slice(x, 0, 2 * k, 2 * k + 2)));
    losses.push_back(loss.item<double>());
    loss.backward();
    step.end_micro_batch(losses.back());
  }
  const double loss = step.finish_step();

  // The same micro-batches one by one on the reference copy, summed in the tree by hand.
  auto* bn = dynamic_cast<nn::BatchNorm2d*>((*reference)[1].get());
  std::vector<std::vector<float>> grads, means;
  const Tensor weight = reference->parameters()[0];
  for (int k = 0; k < 4; ++k) {
    fill_(bn->running_mean, 0.0);
    const double momentum = bn->momentum;
    bn->momentum = 1.0;  // the running mean becomes this micro-batch's mean
    square_mean(reference->forward(slice(x, 0, 2 * k, 2 * k + 2))).backward();
    bn->momentum = momentum;
    grads.push_back(weight.grad().to_vector<float>());
    means.push_back(bn->running_mean.to_vector<float>());
    weight.set_grad(Tensor());
  }
  std::vector<float> expected = recursive_tree(grads, 0, 4);
  for (auto& v : expected) v *= 0.25f;
  REQUIRE(same_bits(model->parameters()[0].grad().to_vector<float>(), expected));
  std::vector<float> mean_stat = recursive_tree(means, 0, 4);
  auto* trained_bn = dynamic_cast<nn::BatchNorm2d*>((*model)[1].get());
  const auto running = trained_bn->running_mean.to_vector<float>();
  for (size_t c = 0; c < running.size(); ++c) REQUIRE(running[c] == Approx(0.1 * mean_stat[c] * 0.25).epsilon(1e-6));
  REQUIRE(trained_bn->num_batches_tracked.item<double>() == 1.0);  // once per step, not per micro-batch
  REQUIRE(loss == Approx(((losses[0] + losses[1]) + (losses[2] + losses[3])) / 4).epsilon(1e-6));

  auto four = dist::in_process_group(4);
  REQUIRE_THROWS_WITH(train::DataParallelStep(*model, one, 3), Catch::Contains("micro_batches = 3") &&
                                                                     Catch::Contains("power of two"));
  REQUIRE_THROWS_WITH(train::DataParallelStep(*model, *four[0], 2),
                      Catch::Contains("micro_batches = 2") && Catch::Contains("4 ranks"));
}

TEST_CASE("sums of buckets that become final one by one have the tree's bits", "[dist]") {
  const auto leaves = order_sensitive_leaves(8, 300, 21);
  const std::vector<float> reference = recursive_tree(leaves, 0, leaves.size());
  // One rank: each leaf added in three uneven ranges, the last range first.
  dist::PairwiseSum ranges;
  for (const auto& values : leaves) {
    const Tensor l = leaf(values);
    ranges.add_range(l, 250, 300);
    ranges.add_range(l, 0, 7);
    ranges.add_range(l, 7, 250);
    ranges.add_added(l);
  }
  REQUIRE(same_bits(ranges.take().to_vector<float>(), reference));
  REQUIRE_THROWS_WITH(dist::PairwiseSum().add_range(leaf(leaves[0]), 10, 301), Catch::Contains("[10, 301)"));

  // Four ranks: the last leaf's ranges cross the ranks while the next ones are still being added.
  auto ranks = dist::in_process_group(4);
  std::vector<std::vector<float>> results(4);
  std::vector<char> settled(4, 0);
  std::vector<std::thread> threads;
  for (int r = 0; r < 4; ++r)
    threads.emplace_back([&, r] {
      dist::Communicator& comm = *ranks[static_cast<size_t>(r)];
      dist::PairwiseSum sum;
      sum.add(leaf(leaves[2 * static_cast<size_t>(r)]));
      const Tensor last = leaf(leaves[2 * static_cast<size_t>(r) + 1]);
      dist::TreeAllreduceInFlight tree(comm);
      Tensor holder;
      for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, 100}, {100, 101}, {101, 300}}) {
        holder = sum.add_range(last, begin, end);
        tree.push(make_view(holder, {end - begin}, {1}, holder.storage_offset() + begin));
        tree.poll();
      }
      sum.add_added(last);
      tree.wait();
      const Tensor total = sum.take();
      // Catch's assertions are for the main thread: the ranks leave what they saw.
      settled[static_cast<size_t>(r)] = tree.queued() == 0 && total.is_same(holder);
      results[static_cast<size_t>(r)] = total.to_vector<float>();
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < 4; ++r) {
    INFO("rank " << r);
    REQUIRE(settled[static_cast<size_t>(r)]);  // nothing left queued; the sum is in the ranges' tensor
    REQUIRE(same_bits(results[static_cast<size_t>(r)], reference));
  }
}

namespace {

// One data-parallel step of a small Conv/BatchNorm model, for the overlap tests: what a rank ends
// with, and how its buckets went.
struct OverlapResult {
  std::vector<std::vector<float>> grads;
  std::vector<float> running_var;
  double loss = 0;
  int64_t sent_during_backward = 0, buckets = 0, left_in_grad = 0;
  bool overlapped = false;
};

// Rank `comm` of a job training one step of 4 micro-batches of 2 samples on `device` (meant for a
// thread of its own: no assertions here).
OverlapResult overlap_step(dist::Communicator& comm, train::DataParallelOptions options, Device device) {
  Generator g(4);
  auto model = std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Conv2d>(nn::Conv2dOptions{3, 6, 3, 1, 1}, &g), std::make_shared<nn::BatchNorm2d>(6),
      std::make_shared<nn::Conv2d>(nn::Conv2dOptions{6, 6, 3, 1, 1}, &g), std::make_shared<nn::BatchNorm2d>(6),
      std::make_shared<nn::Conv2d>(nn::Conv2dOptions{6, 2, 1, 1, 0}, &g)});
  model->to(device);
  model->train();
  Generator data(9);
  const Tensor x = randn({8, 3, 5, 5}, {}, &data).to(device);
  train::DataParallelStep step(*model, comm, 4, options);
  int64_t left_in_grad = 0;
  step.begin_step();
  for (int64_t j = 0; j < step.local_micro_batches(); ++j) {
    const int64_t k = step.first_micro_batch() + j;
    Tensor loss = square_mean(model->forward(slice(x, 0, 2 * k, 2 * k + 2)));
    const double v = loss.item<double>();
    loss.backward();
    // The gradients were taken as backward reached each parameter.
    for (const Tensor& p : model->parameters()) left_in_grad += p.grad().defined() ? 1 : 0;
    step.end_micro_batch(v);
  }
  OverlapResult r;
  r.left_in_grad = left_in_grad;
  r.loss = step.finish_step();
  for (const Tensor& p : model->parameters()) r.grads.push_back(p.grad().to(kCPU).to_vector<float>());
  r.running_var = dynamic_cast<nn::BatchNorm2d*>((*model)[3].get())->running_var.to(kCPU).to_vector<float>();
  r.sent_during_backward = step.buckets_sent_during_backward();
  r.buckets = step.bucket_count();
  r.overlapped = step.overlaps_backward();
  return r;
}

// overlap_step() on every rank of `ranks`, each on a thread of its own.
std::vector<OverlapResult> overlap_steps(const std::vector<std::shared_ptr<dist::Communicator>>& ranks,
                                         train::DataParallelOptions options, Device device) {
  std::vector<OverlapResult> results(ranks.size());
  std::vector<std::thread> threads;
  for (size_t r = 0; r < ranks.size(); ++r)
    threads.emplace_back([&, r] { results[r] = overlap_step(*ranks[r], options, device); });
  for (auto& t : threads) t.join();
  return results;
}

// overlap_step() on 1 rank, then on 2 and 4 in-process ranks with and without overlap (each rank's
// communicator made by `wrap`): every rank has one process's bits, and with overlap every bucket
// was on its way before backward returned.
void check_overlapped_steps(Device device,
                            const std::function<std::shared_ptr<dist::Communicator>(std::shared_ptr<dist::Communicator>)>& wrap) {
  test::ThreadCountGuard threads;
  dist::SingleProcess one;
  const OverlapResult reference = overlap_step(one, {}, device);
  REQUIRE_FALSE(reference.overlapped);  // nothing to overlap with on one rank
  REQUIRE(reference.left_in_grad == 0);
  for (int w : {2, 4})
    for (const bool overlap : {true, false}) {
      INFO(w << " ranks on " << device.str() << ", overlap " << overlap);
      std::vector<std::shared_ptr<dist::Communicator>> ranks;
      for (auto& r : dist::in_process_group(w)) ranks.push_back(wrap(r));
      // Buckets of at least 10 values: several, most complete while backward goes on below them.
      const train::DataParallelOptions options{.overlap_backward = overlap, .bucket_elements = 10};
      for (const OverlapResult& r : overlap_steps(ranks, options, device)) {
        REQUIRE(r.left_in_grad == 0);
        REQUIRE(r.grads.size() == reference.grads.size());
        for (size_t i = 0; i < r.grads.size(); ++i) REQUIRE(same_bits(r.grads[i], reference.grads[i]));
        REQUIRE(same_bits(r.running_var, reference.running_var));
        REQUIRE(r.loss == reference.loss);
        REQUIRE(r.buckets >= 4);
        REQUIRE(r.overlapped == overlap);
        // Every bucket was complete, and on its way to the other ranks, before backward returned.
        REQUIRE(r.sent_during_backward == (overlap ? r.buckets : 0));
      }
    }
}

// An in-process rank that says its CUDA exchanges overlap compute, as NCCL's do, so that a CUDA
// model's buckets go during backward on one GPU (NCCL itself refuses two ranks on one GPU). Its
// exchanges still go through host memory: the step's order of work is NCCL's, the transport not.
class OverlappingDeviceExchanges final : public dist::Communicator {
 public:
  explicit OverlappingDeviceExchanges(std::shared_ptr<dist::Communicator> inner) : inner_(std::move(inner)) {}
  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  int local_rank() const override { return inner_->local_rank(); }
  void exchange(int peer, const void* send, void* recv, size_t bytes) override {
    inner_->exchange(peer, send, recv, bytes);
  }
  std::unique_ptr<dist::PendingExchange> start_exchange(int peer, const void* send, void* recv, size_t bytes) override {
    return inner_->start_exchange(peer, send, recv, bytes);
  }
  void broadcast(void* data, size_t bytes, int root) override { inner_->broadcast(data, bytes, root); }
  void barrier() override { inner_->barrier(); }
  void library_allreduce_sum(float* values, size_t count) override { inner_->library_allreduce_sum(values, count); }
  [[noreturn]] void abort(int code) override { std::_Exit(code); }
  std::string describe() const override { return inner_->describe(); }
  bool device_exchanges_overlap_compute() const override { return true; }

 private:
  std::shared_ptr<dist::Communicator> inner_;
};

}  // namespace

TEST_CASE("gradient buckets sent while backward runs give the bits of one process", "[dist]") {
  check_overlapped_steps(kCPU, [](std::shared_ptr<dist::Communicator> rank) { return rank; });
  // The wrapper the CUDA test below needs forwards everything (checked here, where it runs).
  check_overlapped_steps(kCPU, [](std::shared_ptr<dist::Communicator> rank) {
    return std::make_shared<OverlappingDeviceExchanges>(std::move(rank));
  });
}

TEST_CASE("train.bucket_mb counts f32 gradient values, at least one per bucket", "[dist]") {
  REQUIRE(train::bucket_elements(16) == train::DataParallelOptions{}.bucket_elements);  // the default: 4M values
  REQUIRE(train::bucket_elements(4) == int64_t{1} << 20);
  REQUIRE(train::bucket_elements(0.25) == int64_t{1} << 16);
  REQUIRE(train::bucket_elements(1e-9) == 1);
}

TEST_CASE("CUDA gradient buckets sent while backward runs give the bits of one process", "[cuda][.]") {
  EVIT_REQUIRE_GPU();
  // Through host memory (which does not overlap) the buckets go after backward.
  for (const OverlapResult& r : overlap_steps(dist::in_process_group(2), {.bucket_elements = 10}, test::cuda0()))
    REQUIRE_FALSE(r.overlapped);
  check_overlapped_steps(test::cuda0(), [](std::shared_ptr<dist::Communicator> rank) {
    return std::make_shared<OverlappingDeviceExchanges>(std::move(rank));
  });
}

TEST_CASE("loader shards cut every batch into the ranks' contiguous parts", "[dist][data]") {
  fs::path root = fs::temp_directory_path() / "evit_dist_shards";
  fs::remove_all(root);
  for (int c = 0; c < 2; ++c) {
    fs::create_directories(root / "train" / ("c" + std::to_string(c)));
    for (int i = 0; i < 6; ++i) {
      Image img(8, 8, 3);
      for (auto& v : img.data) v = static_cast<uint8_t>(40 * c + 7 * i);
      encode_png((root / "train" / ("c" + std::to_string(c)) / ("i" + std::to_string(i) + ".png")).string(), img);
    }
  }
  auto set = std::make_shared<data::ImageFolderDataset>(root.string(), "train");
  data::LoaderOptions o;
  o.batch_size = 4;
  o.drop_last = true;
  o.workers = 0;
  o.seed = 3;
  data::DataLoader whole(set, o);
  whole.start_epoch(1);
  std::vector<data::DataLoader*> parts;
  std::vector<std::unique_ptr<data::DataLoader>> owners;
  for (int s = 0; s < 2; ++s) {
    o.shard = s, o.shards = 2;
    owners.push_back(std::make_unique<data::DataLoader>(set, o));
    owners.back()->start_epoch(1);
  }
  data::Batch all, a, b;
  int batches = 0;
  while (whole.next(all)) {
    REQUIRE(owners[0]->next(a));
    REQUIRE(owners[1]->next(b));
    REQUIRE(test::bitwise_equal(cat({a.input, b.input}, 0), all.input));
    REQUIRE(test::bitwise_equal(cat({a.target, b.target}, 0), all.target));
    ++batches;
  }
  REQUIRE(batches == 3);
  o.batch_size = 3;
  data::DataLoader odd(set, o);
  odd.start_epoch(0);
  REQUIRE_THROWS_WITH(odd.next(a), Catch::Contains("3 samples") && Catch::Contains("2 equal parts"));
}

namespace {
// Scores `model` on `val` in one process and sharded over in-process groups of 2 and 4 ranks (each
// rank a thread with its own copy of the model): every rank must get the one-process report.
void require_sharded_evaluation_equal(train::Task task, const std::string& model_name, int64_t classes,
                                      const data::Dataset& val) {
  train::EvalSpec spec;
  spec.task = task;
  spec.num_classes = classes;
  const train::Evaluator ev(spec);
  auto model = zoo::create_model(model_name, classes);
  const train::EvalReport one = ev.run(*model, val);
  REQUIRE_FALSE(one.metrics.empty());
  for (int w : {2, 4}) {
    auto ranks = dist::in_process_group(w);
    std::vector<train::EvalReport> reports(static_cast<size_t>(w));
    std::vector<std::shared_ptr<zoo::Model>> copies;
    for (int r = 0; r < w; ++r) {
      copies.push_back(zoo::create_model(model_name, classes));
      copies.back()->load_state_dict(model->state_dict());
    }
    std::vector<std::thread> threads;
    for (int r = 0; r < w; ++r)
      threads.emplace_back([&, r] {
        const auto i = static_cast<size_t>(r);
        reports[i] = ev.run(*copies[i], val, false, "eval", ranks[i].get());
      });
    for (auto& t : threads) t.join();
    for (int r = 0; r < w; ++r) {
      INFO(train::task_name(task) << " on " << w << " ranks, rank " << r);
      const auto& rep = reports[static_cast<size_t>(r)];
      REQUIRE(rep.metrics == one.metrics);  // exact: counts summed, per-image scores gathered
      REQUIRE(rep.class_iou.size() == one.class_iou.size());
      for (size_t c = 0; c < one.class_iou.size(); ++c)
        REQUIRE((std::isnan(one.class_iou[c]) ? std::isnan(rep.class_iou[c]) : rep.class_iou[c] == one.class_iou[c]));
    }
  }
}
}  // namespace

TEST_CASE("sharded evaluation gives every rank the one-process metrics", "[dist][evaluator]") {
  test::ThreadCountGuard threads;
  const fs::path root = fs::temp_directory_path() / "evit_dist_eval";
  fs::remove_all(root);
  Generator g(5);
  for (int c = 0; c < 3; ++c) {  // 7 images per class: the shards differ in size
    fs::create_directories(root / "cls" / "val" / ("c" + std::to_string(c)));
    for (int i = 0; i < 7; ++i) {
      Image img(40, 40, 3);
      for (auto& v : img.data) v = static_cast<uint8_t>(60 * c + g.next_u64() % 90);
      encode_png((root / "cls" / "val" / ("c" + std::to_string(c)) / ("i" + std::to_string(i) + ".png")).string(), img);
    }
  }
  data::ImageFolderDataset cls((root / "cls").string(), "val");
  require_sharded_evaluation_equal(train::Task::classification, "efficientvit-b0", 3, cls);

  data::write_synthetic_cityscapes((root / "seg").string(), 1, 5, 64, 96, 3);
  require_sharded_evaluation_equal(train::Task::segmentation, "efficientvit-seg-b0-cityscapes", 19,
                                   *data::cityscapes((root / "seg").string(), "val"));

  fs::create_directories(root / "sr");
  for (int i = 0; i < 5; ++i) {
    Image img(48, 40, 3);
    for (auto& v : img.data) v = static_cast<uint8_t>(g.next_u64() % 256);
    encode_png((root / "sr" / ("p" + std::to_string(i) + ".png")).string(), img);
  }
  data::SRDataset sr((root / "sr").string(), 2);
  require_sharded_evaluation_equal(train::Task::super_resolution, "efficientvit-sr-x2", 0, sr);
}

TEST_CASE("sharded SAM evaluations give every rank the one-process metrics", "[dist][evaluator][sam]") {
  test::ThreadCountGuard threads;
  // Distillation: embedding MSE, prompt agreement and (an SA-1B scene is among the images) box
  // mIoU. Three images: on 2 and 4 ranks the shards differ in size and one rank of 4 has none.
  const std::string data = test::distill_data("evit_distill_data");
  train::SamDistillDataset distill(data + "/val", data + "/cache", 128);
  REQUIRE(distill.size() == 3);
  require_sharded_evaluation_equal(train::Task::sam_distill, "efficientvit-sam-l0", 0, distill);
  // Fine-tuning: box mIoU over SA-1B images.
  const fs::path sa1b = fs::temp_directory_path() / "evit_dist_sam_eval";
  fs::remove_all(sa1b);
  fs::create_directories(sa1b);
  for (int id : {3, 4}) test::write_sa1b_scene(sa1b.string(), id);
  train::SamFinetuneDataset finetune(sa1b.string(), 128, 2, false);
  require_sharded_evaluation_equal(train::Task::sam_finetune, "efficientvit-sam-l0", 0, finetune);
}

TEST_CASE("sharded SAM prompt evaluation gives every rank the one-process instances", "[dist][sam]") {
  test::ThreadCountGuard threads;
  // Three SA-1B scenes as one annotation set: on 2 and 4 ranks the shards differ in size and one
  // rank of 4 has no image.
  const fs::path dir = fs::temp_directory_path() / "evit_dist_sam_prompts";
  fs::remove_all(dir);
  fs::create_directories(dir);
  data::InstanceSet set;
  for (int id : {1, 2, 3}) {
    test::write_sa1b_scene(dir.string(), id);
    const data::InstanceSet one = data::read_sa1b_image((dir / ("sa_" + std::to_string(id) + ".json")).string());
    set.images.insert(set.images.end(), one.images.begin(), one.images.end());
    set.annotations.insert(set.annotations.end(), one.annotations.begin(), one.annotations.end());
    set.format = one.format;
  }
  set.source = "three SA-1B scenes";
  set.index();
  auto model = zoo::make_efficientvit_sam("l0");
  test::fill_deterministic(*model);
  model->eval();
  for (const std::string prompt : {"box", "points"}) {
    train::SamEvalOptions opt;
    opt.prompt = prompt;
    opt.clicks = {1, 3};
    train::SamPredictor predictor(model);
    const train::SamEvalResult want = train::evaluate_sam(predictor, set, dir.string(), opt);
    REQUIRE(want.images == 3);
    REQUIRE(want.instances.size() == set.annotations.size());
    for (int w : {2, 4}) {
      auto ranks = dist::in_process_group(w);
      std::vector<train::SamEvalResult> got(static_cast<size_t>(w));
      std::vector<int> scored(static_cast<size_t>(w), -1);  // progress calls: one before, one per image
      std::vector<std::thread> ts;
      for (int r = 0; r < w; ++r)
        ts.emplace_back([&, r] {
          auto copy = zoo::make_efficientvit_sam("l0");
          copy->load_state_dict(model->state_dict());
          copy->eval();
          train::SamPredictor mine(std::move(copy));
          const auto i = static_cast<size_t>(r);
          got[i] = train::evaluate_sam(mine, set, dir.string(), opt, [&, i](int64_t, int64_t) { ++scored[i]; },
                                       ranks[i].get());
        });
      for (auto& t : ts) t.join();
      for (int r = 0; r < w; ++r) {
        INFO(prompt << " prompts on " << w << " ranks, rank " << r);
        const train::SamEvalResult& g = got[static_cast<size_t>(r)];
        CHECK(scored[static_cast<size_t>(r)] == (3 - r + w - 1) / w);  // images r, r + w, ... of 3
        REQUIRE(g.images == want.images);
        REQUIRE(g.skipped_small == want.skipped_small);
        REQUIRE(g.instances.size() == want.instances.size());
        for (size_t i = 0; i < want.instances.size(); ++i) {
          const train::SamInstanceScore &a = g.instances[i], &b = want.instances[i];
          REQUIRE(a.annotation_id == b.annotation_id);
          REQUIRE(a.image_id == b.image_id);
          REQUIRE(a.area == b.area);
          REQUIRE(a.iou == b.iou);
          REQUIRE(a.clicks.size() == b.clicks.size());
          for (size_t k = 0; k < a.clicks.size(); ++k)
            REQUIRE((a.clicks[k].x == b.clicks[k].x && a.clicks[k].y == b.clicks[k].y &&
                     a.clicks[k].positive == b.clicks[k].positive));
        }
        for (size_t c = 0; c < want.scores.size(); ++c) REQUIRE(g.scores[c].miou == want.scores[c].miou);
      }
    }
  }
}

TEST_CASE("ordered_gather joins per-item values of any length in item order", "[dist]") {
  // Items of 0 to 3 values; a value's position in the result depends on every earlier item's length.
  auto item = [](size_t i) {
    std::vector<double> v;
    for (size_t k = 0; k < i % 4; ++k) v.push_back(1e8 * static_cast<double>(i) + static_cast<double>(k) + 0.25);
    return v;
  };
  const size_t n = 11;
  std::vector<double> expected;
  for (size_t i = 0; i < n; ++i) for (double x : item(i)) expected.push_back(x);
  dist::SingleProcess one;
  std::vector<std::vector<double>> all(n);
  for (size_t i = 0; i < n; ++i) all[i] = item(i);
  REQUIRE(dist::ordered_gather(one, all) == expected);
  for (int w : {2, 4}) {
    auto ranks = dist::in_process_group(w);
    std::vector<std::vector<double>> got(static_cast<size_t>(w));
    std::vector<std::thread> ts;
    for (int r = 0; r < w; ++r)
      ts.emplace_back([&, r] {
        std::vector<std::vector<double>> mine(n);
        for (size_t i = static_cast<size_t>(r); i < n; i += static_cast<size_t>(w)) mine[i] = item(i);
        got[static_cast<size_t>(r)] = dist::ordered_gather(*ranks[static_cast<size_t>(r)], mine);
      });
    for (auto& t : ts) t.join();
    for (int r = 0; r < w; ++r) REQUIRE(got[static_cast<size_t>(r)] == expected);
  }
  // An item claimed by two ranks is an error on every rank.
  auto ranks = dist::in_process_group(2);
  std::vector<std::string> errors(2);
  std::vector<std::thread> ts;
  for (int r = 0; r < 2; ++r)
    ts.emplace_back([&, r] {
      try {
        dist::ordered_gather(*ranks[static_cast<size_t>(r)], {{1.0}, {}});
      } catch (const Error& e) {
        errors[static_cast<size_t>(r)] = e.what();
      }
    });
  for (auto& t : ts) t.join();
  for (const std::string& e : errors) CHECK_THAT(e, Catch::Contains("item 0 was computed on 2 ranks"));
}

TEST_CASE("micro-batch configs that cannot keep the contract fail naming the key", "[dist][trainer]") {
  const fs::path root = fs::temp_directory_path() / "evit_dist_config";
  fs::remove_all(root);
  for (const char* split : {"train", "val"})
    for (int c = 0; c < 2; ++c) {
      fs::create_directories(root / split / ("c" + std::to_string(c)));
      for (int i = 0; i < 6; ++i) {
        Image img(36, 36, 3);
        for (auto& v : img.data) v = static_cast<uint8_t>(100 * c + 5 * i);
        encode_png((root / split / ("c" + std::to_string(c)) / ("i" + std::to_string(i) + ".png")).string(), img);
      }
    }
  auto config = [&](int64_t batch, int64_t micro, bool drop_last) {
    nlohmann::json c = {
        {"task", "classification"},
        {"model", {{"name", "efficientvit-b0"}}},
        {"data", {{"root", root.string()}, {"dataset", "imagenet"}, {"crop", 32}, {"batch_size", batch},
                  {"micro_batches", micro}, {"drop_last", drop_last}, {"workers", 0}}},
        {"optimizer", {{"lr", 1e-3}}},
        {"train", {{"steps", 1}}},
        {"output_dir", (root / "run").string()}};
    return train::load_config_text(c.dump(), "micro-batch config", train::training_config_schema());
  };
  REQUIRE_THROWS_WITH(train::Trainer(config(6, 3, true)),
                      Catch::Contains("config.data.micro_batches = 3") && Catch::Contains("power of two"));
  REQUIRE_THROWS_WITH(train::Trainer(config(6, 4, true)),
                      Catch::Contains("config.data.batch_size = 6") && Catch::Contains("micro_batches = 4"));
  REQUIRE_THROWS_WITH(train::Trainer(config(8, 2, false)), Catch::Contains("config.data.drop_last must be true"));
  {
    auto c = config(8, 2, true);
    c["train"]["allreduce"] = "ring";
    REQUIRE_THROWS_WITH(train::load_config_text(c.dump(), "micro-batch config", train::training_config_schema()),
                        Catch::Contains("config.train.allreduce") || Catch::Contains("train.allreduce"));
  }
  auto four = dist::in_process_group(4);
  REQUIRE_THROWS_WITH(train::Trainer(config(8, 2, true), four[0].get()),
                      Catch::Contains("micro_batches = 2") && Catch::Contains("4 ranks"));
  // K = 2 in one process trains: the same micro-batch path the ranks take.
  train::Trainer t(config(8, 2, true));
  t.train_steps(1);
  REQUIRE(t.step() == 1);
}

TEST_CASE("writes the image folders of the multi-process training checks", "[.][dist_data]") {
  // Run by tests/dist/dist_checks.sh with EVIT_DIST_DATA set: two classes of 8 images at 72 px.
  const char* out = std::getenv("EVIT_DIST_DATA");
  REQUIRE(out != nullptr);
  Generator g(21);
  for (const char* split : {"train", "val"})
    for (int c = 0; c < 2; ++c) {
      fs::path dir = fs::path(out) / split / (c ? "n002" : "n001");
      fs::create_directories(dir);
      for (int i = 0; i < 8; ++i) {
        Image img(72, 72, 3);
        for (size_t p = 0; p < img.data.size(); ++p)
          img.data[p] = static_cast<uint8_t>((c ? 150 : 60) + (p % 3) * 20 + g.next_u64() % 50);
        encode_png((dir / ("img" + std::to_string(i) + ".png")).string(), img);
      }
    }
}
