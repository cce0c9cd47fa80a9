#include "train/data_parallel.h"

#include <algorithm>

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

DataParallelStep::DataParallelStep(nn::Module& model, dist::Communicator& comm, int64_t micro_batches,
                                   bool library_allreduce)
    : model_(model), comm_(comm), k_(micro_batches), library_allreduce_(library_allreduce) {
  const int w = comm.size();
  EVIT_CHECK(dist::is_power_of_two(k_), "config.data.micro_batches = ", k_,
             ": the fixed summation tree needs a power of two (1, 2, 4, 8, ...)");
  EVIT_CHECK(dist::is_power_of_two(w), "data-parallel training runs on a power-of-two number of ranks; this job has ",
             w, " (", comm.describe(), ")");
  EVIT_CHECK(k_ % w == 0, "config.data.micro_batches = ", k_, " cannot be split over ", w,
             " ranks: every rank runs the same number of micro-batches, so set it to a multiple of ", w);
  for (const Tensor& p : model.parameters())
    if (p.requires_grad()) params_.push_back(p);
  // Reverse order: the gradients backward produces first come first, as buckets that could be
  // sent while backward goes on.
  std::reverse(params_.begin(), params_.end());
  for (auto& [name, m] : model.named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(m.get())) norms_.push_back(bn);
  statistics_.resize(norms_.size());
  // A leaf: every gradient, every BatchNorm's mean and variance, then a "has a gradient" flag per
  // parameter and the loss (the tail, written from the host).
  for (const Tensor& p : params_) leaf_size_ += p.numel();
  for (auto* bn : norms_) leaf_size_ += 2 * bn->running_mean.numel();
  leaf_size_ += static_cast<int64_t>(params_.size()) + 1;
}

void DataParallelStep::begin_step() {
  EVIT_CHECK(sum_.count() == 0, "data-parallel step: begin_step() before the previous step finished");
  for (size_t i = 0; i < norms_.size(); ++i) {
    statistics_[i].clear();
    norms_[i]->batch_statistics = &statistics_[i];
  }
}

void DataParallelStep::end_micro_batch(double loss) {
  // The leaf lives where the model does: a CUDA model's gradients are never copied to the host.
  const Device device = params_.empty() ? kCPU : params_.front().device();
  Tensor leaf = empty({leaf_size_}, TensorOptions(DType::f32, device));
  int64_t offset = 0;
  auto put = [&](const Tensor& t) {
    EVIT_CHECK(t.dtype() == DType::f32, "data-parallel step: expected f32 values, got ", t.desc());
    copy_elements(part_of(leaf, offset, t.sizes()), t);
    offset += t.numel();
  };
  std::vector<float> tail;
  tail.reserve(params_.size() + 1);
  for (const Tensor& p : params_) {
    const Tensor g = p.grad();
    if (g.defined()) {
      put(g);
    } else {
      copy_elements(part_of(leaf, offset, {p.numel()}), scalar_tensor(0.0, TensorOptions(DType::f32, device)));
      offset += p.numel();
    }
    tail.push_back(g.defined() ? 1.0f : 0.0f);
    p.set_grad(Tensor());
  }
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
  tail.push_back(static_cast<float>(loss));
  EVIT_CHECK(offset + static_cast<int64_t>(tail.size()) == leaf_size_, "data-parallel step: leaf of ",
             offset + static_cast<int64_t>(tail.size()), " values, expected ", leaf_size_);
  const int64_t tail_size = static_cast<int64_t>(tail.size());
  copy_elements(part_of(leaf, offset, {tail_size}), from_vector(tail, {tail_size}));
  sum_.add(std::move(leaf));
}

double DataParallelStep::finish_step() {
  EVIT_CHECK(sum_.count() == local_micro_batches(), "data-parallel step: ", sum_.count(), " micro-batches ran, ",
             local_micro_batches(), " expected");
  for (auto* bn : norms_) bn->batch_statistics = nullptr;
  const Tensor sum = sum_.take();
  if (library_allreduce_) comm_.library_allreduce_tensor(sum);
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
