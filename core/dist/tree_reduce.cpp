#include "core/dist/tree_reduce.h"

#include <algorithm>
#include <cstring>

#include "core/cuda.h"
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

void add_into(const Tensor& a, const Tensor& b) {
  EVIT_CHECK(a.sizes() == b.sizes() && a.dtype() == b.dtype() && a.device() == b.device(),
             "pairwise sum: cannot add ", b.desc(), " to ", a.desc());
  EVIT_CHECK(a.is_contiguous() && b.is_contiguous(), "pairwise sum: contiguous leaves expected");
  if (a.device().is_cuda()) return cuda::cuda_accumulate(a, b);
  const size_t n = static_cast<size_t>(a.numel());
  switch (a.dtype()) {
    case DType::f32: return add_elements(a.data_ptr<float>(), b.data_ptr<float>(), n);
    case DType::f64: return add_elements(a.data_ptr<double>(), b.data_ptr<double>(), n);
    case DType::i64: return add_elements(a.data_ptr<int64_t>(), b.data_ptr<int64_t>(), n);
    default: EVIT_THROW("pairwise sum: ", a.desc(), " (f32, f64 or i64 expected)");
  }
}

Tensor flat_range(const Tensor& t, int64_t begin, int64_t end) {
  return make_view(t, {end - begin}, {1}, t.storage_offset() + begin);
}

void PairwiseSum::add(Tensor leaf) {
  add_range(leaf, 0, leaf.numel());
  add_added(std::move(leaf));
}

Tensor PairwiseSum::add_range(const Tensor& leaf, int64_t begin, int64_t end) {
  if (!stack_.empty())
    EVIT_CHECK(leaf.sizes() == stack_.back().second.sizes(), "pairwise sum: leaf ", count_, " is ", leaf.desc(),
               ", the earlier ones ", stack_.back().second.desc());
  EVIT_CHECK(leaf.is_contiguous() && 0 <= begin && begin <= end && end <= leaf.numel(), "pairwise sum: elements [",
             begin, ", ", end, ") of ", leaf.desc());
  // Two complete subtrees of the same height become one of the next height: the left (earlier)
  // one accumulates the right. The new leaf (height 0) carries up the stack like a binary counter.
  Tensor right = leaf;
  int height = 0;
  for (auto left = stack_.rbegin(); left != stack_.rend() && left->first == height; ++left, ++height) {
    if (begin < end) add_into(flat_range(left->second, begin, end), flat_range(right, begin, end));
    right = left->second;
  }
  return right;
}

void PairwiseSum::add_added(Tensor leaf) {
  stack_.emplace_back(0, std::move(leaf));
  ++count_;
  // The same merges add_range() made on the values, now on the stack.
  while (stack_.size() >= 2 && stack_[stack_.size() - 2].first == stack_.back().first) {
    stack_.pop_back();
    ++stack_.back().first;
  }
}

Tensor PairwiseSum::take() {
  EVIT_CHECK(is_power_of_two(count_) && stack_.size() == 1, "pairwise sum: ", count_,
             " leaves do not make a complete binary tree (a power of two is needed)");
  Tensor sum = std::move(stack_.back().second);
  stack_.clear();
  count_ = 0;
  return sum;
}

TreeAllreduceInFlight::TreeAllreduceInFlight(Communicator& comm) : comm_(comm) {
  EVIT_CHECK(is_power_of_two(comm.size()), "tree all-reduce: the job has ", comm.size(),
             " ranks; the fixed summation tree needs a power of two (1, 2, 4, 8, ...)");
}

// The exchange in flight reads and writes queue_.front() and received_: it ends before they do.
TreeAllreduceInFlight::~TreeAllreduceInFlight() { in_flight_.reset(); }

void TreeAllreduceInFlight::push(const Tensor& piece) {
  EVIT_CHECK(piece.is_contiguous() && piece.dim() == 1, "tree all-reduce: a contiguous 1-D tensor expected, got ",
             piece.desc());
  if (comm_.size() == 1) return;
  queue_.push_back(piece);
  advance(false);
}

void TreeAllreduceInFlight::poll() { advance(false); }

void TreeAllreduceInFlight::wait() { advance(true); }

void TreeAllreduceInFlight::advance(bool block) {
  while (!queue_.empty()) {
    const Tensor& piece = queue_.front();
    // One buffer for the partner's values, grown between exchanges to the largest piece.
    if (!in_flight_ && (!received_.defined() || received_.numel() < piece.numel() ||
                        received_.dtype() != piece.dtype() || received_.device() != piece.device()))
      received_ = empty({piece.numel()}, TensorOptions(piece.dtype(), piece.device()));
    const Tensor received = flat_range(received_, 0, piece.numel());
    if (!in_flight_) in_flight_ = comm_.start_exchange_tensor(comm_.rank() ^ distance_, piece, received);
    if (block) in_flight_->wait();
    else if (!in_flight_->test()) return;
    in_flight_.reset();
    add_into(piece, received);
    distance_ *= 2;
    if (distance_ >= comm_.size()) {
      queue_.pop_front();
      distance_ = 1;
    }
  }
}

// The spans are small (metric counts, per-image values): they go through a tensor copy, so there
// is one implementation of the tree.
template <class T>
void tree_allreduce_sum(Communicator& comm, std::span<T> values, int64_t bucket_elements) {
  const Tensor t = from_blob(values.data(), {static_cast<int64_t>(values.size())}, dtype_v<T>);
  tree_allreduce_sum(comm, t, bucket_elements);
  if (!values.empty()) std::memcpy(values.data(), t.raw_data(), values.size_bytes());
}

template void tree_allreduce_sum<float>(Communicator&, std::span<float>, int64_t);
template void tree_allreduce_sum<double>(Communicator&, std::span<double>, int64_t);
template void tree_allreduce_sum<int64_t>(Communicator&, std::span<int64_t>, int64_t);

void tree_allreduce_sum(Communicator& comm, const Tensor& values, int64_t bucket_elements) {
  EVIT_CHECK(values.is_contiguous() && values.dim() == 1, "tree all-reduce: a contiguous 1-D tensor expected, got ",
             values.desc());
  const int64_t n = values.numel();
  const int64_t bucket = std::clamp<int64_t>(bucket_elements, 1, std::max<int64_t>(n, 1));
  TreeAllreduceInFlight tree(comm);
  for (int64_t begin = 0; begin < n; begin += bucket) tree.push(flat_range(values, begin, std::min(n, begin + bucket)));
  tree.wait();
}

void broadcast_tensors(Communicator& comm, const std::vector<Tensor>& tensors, int root) {
  if (comm.size() == 1) return;
  for (const Tensor& t : tensors) {
    EVIT_CHECK(t.is_contiguous(), "broadcast: tensors must be contiguous");
    comm.broadcast_tensor(t, root);
  }
}

}  // namespace evit::dist
