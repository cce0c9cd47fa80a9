#include "core/dist/tree_reduce.h"

#include <algorithm>

#include "core/copy.h"
#include "core/error.h"
#include "core/parallel.h"

namespace evit::dist {

bool is_power_of_two(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

namespace {
// out[i] += in[i] for n elements, on the pool: elementwise, so the thread count changes no bit.
template <class T>
void add_elements(T* out, const T* in, size_t n) {
  parallel_for(0, static_cast<int64_t>(n), kPointwiseGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] += in[i];
  });
}
}  // namespace

void add_into(std::span<float> a, std::span<const float> b) {
  EVIT_CHECK(a.size() == b.size(), "pairwise sum: leaves of ", a.size(), " and ", b.size(), " values");
  add_elements(a.data(), b.data(), a.size());
}

void PairwiseSum::add(std::vector<float> leaf) {
  if (!stack_.empty())
    EVIT_CHECK(leaf.size() == stack_.back().second.size(), "pairwise sum: leaf ", count_, " has ", leaf.size(),
               " values, the earlier ones ", stack_.back().second.size());
  stack_.emplace_back(0, std::move(leaf));
  ++count_;
  // Two complete subtrees of the same height become one of the next height: the left (earlier)
  // one accumulates the right.
  while (stack_.size() >= 2 && stack_[stack_.size() - 2].first == stack_.back().first) {
    auto right = std::move(stack_.back());
    stack_.pop_back();
    add_into(stack_.back().second, right.second);
    ++stack_.back().first;
  }
}

std::vector<float> PairwiseSum::take() {
  EVIT_CHECK(is_power_of_two(count_) && stack_.size() == 1, "pairwise sum: ", count_,
             " leaves do not make a complete binary tree (a power of two is needed)");
  std::vector<float> sum = std::move(stack_.back().second);
  stack_.clear();
  count_ = 0;
  return sum;
}

template <class T>
void tree_allreduce_sum(Communicator& comm, std::span<T> values, int64_t bucket_elements) {
  const int size = comm.size(), rank = comm.rank();
  EVIT_CHECK(is_power_of_two(size), "tree all-reduce: the job has ", size,
             " ranks; the fixed summation tree needs a power of two (1, 2, 4, 8, ...)");
  if (size == 1 || values.empty()) return;
  const size_t bucket = static_cast<size_t>(std::max<int64_t>(1, bucket_elements));
  std::vector<T> received(std::min(bucket, values.size()));
  for (size_t begin = 0; begin < values.size(); begin += bucket) {
    std::span<T> part = values.subspan(begin, std::min(bucket, values.size() - begin));
    for (int distance = 1; distance < size; distance *= 2) {
      comm.exchange(rank ^ distance, part.data(), received.data(), part.size_bytes());
      add_elements(part.data(), received.data(), part.size());
    }
  }
}

template void tree_allreduce_sum<float>(Communicator&, std::span<float>, int64_t);
template void tree_allreduce_sum<double>(Communicator&, std::span<double>, int64_t);
template void tree_allreduce_sum<int64_t>(Communicator&, std::span<int64_t>, int64_t);

void broadcast_tensors(Communicator& comm, const std::vector<Tensor>& tensors, int root) {
  if (comm.size() == 1) return;
  for (const Tensor& t : tensors) {
    EVIT_CHECK(t.is_contiguous(), "broadcast: tensors must be contiguous");
    const size_t bytes = static_cast<size_t>(t.numel()) * dtype_size(t.dtype());
    if (t.device().is_cpu()) {
      comm.broadcast(t.raw_data(), bytes, root);
    } else {
      // MPI reaches host memory everywhere; CUDA tensors go through a host copy.
      Tensor host = t.to(kCPU).contiguous();
      comm.broadcast(host.raw_data(), bytes, root);
      copy_elements(t, host);
    }
  }
}

}  // namespace evit::dist
