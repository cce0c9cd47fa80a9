#include "train/data_parallel.h"

#include <algorithm>
#include <cmath>

#include "autograd/grad_mode.h"
#include "core/copy.h"
#include "core/cuda.h"
#include "core/error.h"
#include "ops/pointwise.h"

namespace evit::train {
namespace {

// The `like`-shaped view of a flat leaf's values [offset, offset + like.numel()).
Tensor part_of(const Tensor& leaf, int64_t offset, const Shape& like) {
  return make_view(leaf, like, contiguous_strides(like), leaf.storage_offset() + offset);
}

}  // namespace

// What a parameter's grad-ready hook reaches: cleared when the step object goes, so a hook left
// on a parameter that outlives it does nothing.
struct DataParallelStep::HookLink {
  DataParallelStep* step = nullptr;
};

DataParallelStep::DataParallelStep(nn::Module& model, dist::Communicator& comm, int64_t micro_batches,
                                   DataParallelOptions options)
    : model_(model), comm_(comm), k_(micro_batches), options_(options) {
  const int w = comm.size();
  EVIT_CHECK(dist::is_power_of_two(k_), "config.data.micro_batches = ", k_,
             ": the fixed summation tree needs a power of two (1, 2, 4, 8, ...)");
  EVIT_CHECK(dist::is_power_of_two(w), "data-parallel training runs on a power-of-two number of ranks; this job has ",
             w, " (", comm.describe(), ")");
  EVIT_CHECK(k_ % w == 0, "config.data.micro_batches = ", k_, " cannot be split over ", w,
             " ranks: every rank runs the same number of micro-batches, so set it to a multiple of ", w);
  EVIT_CHECK(options_.bucket_elements > 0, "data-parallel step: bucket_elements must be positive");
  for (const Tensor& p : model.parameters())
    if (p.requires_grad()) params_.push_back(p);
  // Reverse order: backward finishes the last layers first, so their buckets fill first.
  std::reverse(params_.begin(), params_.end());
  for (const Tensor& p : params_) {
    if (buckets_.empty() || buckets_.back().end - buckets_.back().begin >= options_.bucket_elements)
      buckets_.push_back({gradient_size_, gradient_size_, 0, 0});
    offsets_.push_back(gradient_size_);
    bucket_of_.push_back(buckets_.size() - 1);
    gradient_size_ += p.numel();
    buckets_.back().end = gradient_size_;
    ++buckets_.back().params;
  }
  for (Bucket& b : buckets_) b.missing = b.params;
  for (auto& [name, m] : model.named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(m.get())) norms_.push_back(bn);
  statistics_.resize(norms_.size());
  // A leaf: every gradient, every BatchNorm's mean and variance, then a "has a gradient" flag per
  // parameter and the loss (the tail, written from the host).
  leaf_size_ = gradient_size_;
  for (auto* bn : norms_) leaf_size_ += 2 * bn->running_mean.numel();
  leaf_size_ += static_cast<int64_t>(params_.size()) + 1;
  has_grad_.assign(params_.size(), 0);
  // CUDA gradients through host memory are joined after backward: the copy to the host in the
  // middle of backward would wait for the GPU and leave its queue empty. NCCL moves them on a
  // stream of its own, beside backward's kernels.
  const bool on_cpu = params_.empty() || params_.front().device().is_cpu();
  const bool overlappable = on_cpu || comm.device_exchanges_overlap_compute();
  if (options_.overlap_backward && overlappable && w > 1 && !options_.library_allreduce)
    in_flight_ = std::make_unique<dist::TreeAllreduceInFlight>(comm);
  link_ = std::make_shared<HookLink>(HookLink{this});
  for (size_t i = 0; i < params_.size(); ++i) {
    std::weak_ptr<HookLink> link = link_;
    params_[i].register_grad_ready_hook([link, i](const Tensor&) {
      if (auto l = link.lock(); l && l->step && l->step->collecting_) l->step->take_gradient(i);
    });
  }
}

DataParallelStep::~DataParallelStep() { link_->step = nullptr; }

void DataParallelStep::begin_step() {
  EVIT_CHECK(sum_.count() == 0 && !collecting_, "data-parallel step: begin_step() before the previous step finished");
  for (size_t i = 0; i < norms_.size(); ++i) {
    statistics_[i].clear();
    norms_[i]->batch_statistics = &statistics_[i];
  }
  sent_during_backward_ = 0;
  collecting_ = true;
}

Tensor& DataParallelStep::leaf() {
  // The leaf lives where the model does: a CUDA model's gradients are never copied to the host.
  if (!leaf_.defined())
    leaf_ = empty({leaf_size_}, TensorOptions(DType::f32, params_.empty() ? kCPU : params_.front().device()));
  return leaf_;
}

void DataParallelStep::take_gradient(size_t i) {
  const Tensor& p = params_[i];
  const Tensor g = p.grad();
  EVIT_CHECK(!has_grad_[i], "data-parallel step: a parameter of shape ", shape_str(p.sizes()),
             " received gradients twice in one micro-batch; run one backward per micro-batch");
  EVIT_CHECK(g.defined() && g.dtype() == DType::f32, "data-parallel step: expected an f32 gradient for a parameter of shape ",
             shape_str(p.sizes()));
  copy_elements(part_of(leaf(), offsets_[i], p.sizes()), g);
  p.set_grad(Tensor());  // its memory goes back to the allocator for the rest of backward
  has_grad_[i] = 1;
  if (--buckets_[bucket_of_[i]].missing == 0) add_ready_buckets();
  if (in_flight_) in_flight_->poll();
}

// Buckets join the tree in order, each as soon as it and those before it are complete.
void DataParallelStep::add_ready_buckets() {
  for (; next_bucket_ < buckets_.size() && buckets_[next_bucket_].missing == 0; ++next_bucket_) {
    add_range(buckets_[next_bucket_].begin, buckets_[next_bucket_].end);
    if (in_flight_ && collecting_ && last_micro_batch()) ++sent_during_backward_;
  }
}

// Adds values [begin, end) of this micro-batch's leaf into the rank's pairwise tree; in the last
// micro-batch they are then final for this rank and go on to the other ranks.
void DataParallelStep::add_range(int64_t begin, int64_t end) {
  const Tensor holder = sum_.add_range(leaf(), begin, end);
  if (in_flight_ && last_micro_batch()) in_flight_->push(dist::flat_range(holder, begin, end));
}

void DataParallelStep::end_micro_batch(double loss) {
  EVIT_CHECK(collecting_, "data-parallel step: end_micro_batch() outside a step (begin_step() first)");
  // Backward is over: what the last micro-batch sends from here on was not sent during it.
  if (last_micro_batch()) collecting_ = false;
  const Device device = leaf().device();
  // Parameters backward did not reach (or whose .grad was set by hand) are taken now.
  for (size_t i = 0; i < params_.size(); ++i) {
    if (has_grad_[i]) continue;
    const Tensor& p = params_[i];
    if (p.grad().defined()) {
      take_gradient(i);
      continue;
    }
    copy_elements(part_of(leaf_, offsets_[i], {p.numel()}), scalar_tensor(0.0, TensorOptions(DType::f32, device)));
    if (--buckets_[bucket_of_[i]].missing == 0) add_ready_buckets();
  }
  int64_t offset = gradient_size_;
  auto put = [&](const Tensor& t) {
    EVIT_CHECK(t.dtype() == DType::f32, "data-parallel step: expected f32 values, got ", t.desc());
    copy_elements(part_of(leaf_, offset, t.sizes()), t);
    offset += t.numel();
  };
  for (size_t i = 0; i < norms_.size(); ++i) {
    auto& s = statistics_[i];
    // A BatchNorm that ran in this micro-batch left its mean and variance; one that did not run
    // (a branch not taken) adds nothing, which the tree could not tell from zeros: refuse it.
    EVIT_CHECK(s.size() == 2, "data-parallel step: a BatchNorm ran ", s.size() / 2,
               " times in one micro-batch; micro-batch steps need every BatchNorm to run exactly once");
    put(s[0]);
    put(s[1]);
    s.clear();
  }
  std::vector<float> tail(has_grad_.begin(), has_grad_.end());
  tail.push_back(static_cast<float>(loss));
  EVIT_CHECK(offset + static_cast<int64_t>(tail.size()) == leaf_size_, "data-parallel step: leaf of ",
             offset + static_cast<int64_t>(tail.size()), " values, expected ", leaf_size_);
  const int64_t tail_size = static_cast<int64_t>(tail.size());
  copy_elements(part_of(leaf_, offset, {tail_size}), from_vector(tail, {tail_size}));
  add_range(gradient_size_, leaf_size_);
  sum_.add_added(std::move(leaf_));
  leaf_ = Tensor();
  // The next micro-batch starts empty.
  std::fill(has_grad_.begin(), has_grad_.end(), 0);
  for (Bucket& b : buckets_) b.missing = b.params;
  next_bucket_ = 0;
}

double DataParallelStep::finish_step() {
  EVIT_CHECK(sum_.count() == local_micro_batches(), "data-parallel step: ", sum_.count(), " micro-batches ran, ",
             local_micro_batches(), " expected");
  for (auto* bn : norms_) bn->batch_statistics = nullptr;
  const Tensor sum = sum_.take();
  if (in_flight_) in_flight_->wait();
  else if (options_.library_allreduce) comm_.library_allreduce_tensor(sum);
  else dist::tree_allreduce_sum(comm_, sum);
  const int64_t tail_size = static_cast<int64_t>(params_.size()) + 1;
  const Tensor tail_tensor = part_of(sum, leaf_size_ - tail_size, {tail_size}).to(kCPU).contiguous();
  const float* tail = tail_tensor.data_ptr<float>();
  const double scale = 1.0 / static_cast<double>(k_);  // exact: K is a power of two
  NoGradGuard no_grad;
  int64_t offset = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    if (tail[i] > 0) p.set_grad(mul(part_of(sum, offset, p.sizes()), scale).to(p.dtype()));
    offset += p.numel();
  }
  for (auto* bn : norms_) {
    const Shape& c = bn->running_mean.sizes();
    const Tensor mean = mul(part_of(sum, offset, c), scale);
    offset += bn->running_mean.numel();
    const Tensor var = mul(part_of(sum, offset, c), scale);
    offset += bn->running_mean.numel();
    // running ← momentum·batch + (1 − momentum)·running, once per step.
    const double m = bn->momentum;
    copy_(bn->running_mean, add(mul(mean, m), mul(bn->running_mean, 1.0 - m)));
    copy_(bn->running_var, add(mul(var, m), mul(bn->running_var, 1.0 - m)));
    add_(bn->num_batches_tracked, 1.0);
  }
  return static_cast<double>(tail[params_.size()]) * scale;
}

int64_t bucket_elements(double mib) {
  return std::max<int64_t>(1, std::llround(mib * double(int64_t{1} << 20) / double(sizeof(float))));
}

std::shared_ptr<dist::Communicator> gradient_communicator(dist::Communicator& job, Device device,
                                                          const std::string& transport) {
  if (!device.is_cuda() || transport == "host") return nullptr;
  EVIT_CHECK(transport == "auto" || transport == "nccl", "config.train.gpu_transport: unknown value '", transport,
             "' (auto, nccl or host)");
  if (transport == "nccl")
    EVIT_CHECK(dist::nccl_available(), "config.train.gpu_transport = \"nccl\" but this build of evit has no NCCL ",
               "(a CUDA build finds it next to the CUDA toolkit, with MPI); use \"host\" or \"auto\"");
  if (transport == "auto" && (job.size() == 1 || !dist::nccl_available())) return nullptr;
  // Ranks share a GPU when a machine runs more ranks than it has GPUs (device = local rank modulo
  // the GPU count); every rank must learn it, not only those that wrap around.
  int64_t sharing = job.local_rank() >= cuda::device_count() ? 1 : 0;
  dist::tree_allreduce_sum(job, std::span<int64_t>(&sharing, 1));
  if (sharing > 0) {
    EVIT_CHECK(transport == "auto", "config.train.gpu_transport = \"nccl\" but ", sharing,
               " rank(s) share a GPU with another (", cuda::device_count(), " GPU(s) per machine, ", job.size(),
               " ranks): NCCL needs a GPU per rank; use \"host\" or \"auto\", or fewer ranks per machine");
    return nullptr;
  }
  return dist::make_nccl_communicator(job, device);
}

void DataParallelStep::broadcast_model() {
  std::vector<Tensor> tensors;
  for (auto& [key, t] : model_.state_dict()) {
    EVIT_CHECK(t.is_contiguous(), "data-parallel start: '", key, "' is not contiguous");
    tensors.push_back(t);
  }
  dist::broadcast_tensors(comm_, tensors, 0);
}

}  // namespace evit::train
