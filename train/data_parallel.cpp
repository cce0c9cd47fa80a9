#include "train/data_parallel.h"

#include <algorithm>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "core/parallel.h"
#include "ops/pointwise.h"

namespace evit::train {
namespace {

// Appends a tensor's values as f32 (gradients and statistics are f32; CUDA ones pass through a
// host copy).
void append(std::vector<float>& leaf, const Tensor& t) {
  EVIT_CHECK(t.dtype() == DType::f32, "data-parallel step: expected f32 values, got ", t.desc());
  Tensor host = t.to(kCPU).contiguous();
  const float* p = host.data_ptr<float>();
  leaf.insert(leaf.end(), p, p + host.numel());
}

// The tensor of `like`'s shape, dtype and device holding leaf values [offset, offset + numel)·scale.
Tensor slice_as(const std::vector<float>& sum, int64_t offset, const Tensor& like, float scale) {
  Tensor host = empty(like.sizes(), DType::f32);
  float* p = host.data_ptr<float>();
  const float* in = sum.data() + offset;
  parallel_for(0, like.numel(), kPointwiseGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) p[i] = in[i] * scale;
  });
  return host.to(like.device());
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
  for (const Tensor& p : params_) leaf_size_ += p.numel() + 1;  // values and a "has a gradient" flag
  for (auto* bn : norms_) leaf_size_ += 2 * bn->running_mean.numel();
  leaf_size_ += 1;  // the loss
}

void DataParallelStep::begin_step() {
  EVIT_CHECK(sum_.count() == 0, "data-parallel step: begin_step() before the previous step finished");
  for (size_t i = 0; i < norms_.size(); ++i) {
    statistics_[i].clear();
    norms_[i]->batch_statistics = &statistics_[i];
  }
}

void DataParallelStep::end_micro_batch(double loss) {
  std::vector<float> leaf;
  leaf.reserve(static_cast<size_t>(leaf_size_));
  for (const Tensor& p : params_) {
    const Tensor g = p.grad();
    if (g.defined()) append(leaf, g);
    else leaf.insert(leaf.end(), static_cast<size_t>(p.numel()), 0.0f);
  }
  for (const Tensor& p : params_) {
    leaf.push_back(p.grad().defined() ? 1.0f : 0.0f);
    p.set_grad(Tensor());
  }
  for (size_t i = 0; i < norms_.size(); ++i) {
    auto& s = statistics_[i];
    // A BatchNorm that ran in this micro-batch left its mean and variance; one that did not run
    // (a branch not taken) adds nothing, which the tree could not tell from zeros: refuse it.
    EVIT_CHECK(s.size() == 2, "data-parallel step: a BatchNorm ran ", s.size() / 2,
               " times in one micro-batch; micro-batch steps need every BatchNorm to run exactly once");
    append(leaf, s[0]);
    append(leaf, s[1]);
    s.clear();
  }
  leaf.push_back(static_cast<float>(loss));
  EVIT_CHECK(static_cast<int64_t>(leaf.size()) == leaf_size_, "data-parallel step: leaf of ", leaf.size(),
             " values, expected ", leaf_size_);
  sum_.add(std::move(leaf));
}

double DataParallelStep::finish_step() {
  EVIT_CHECK(sum_.count() == local_micro_batches(), "data-parallel step: ", sum_.count(), " micro-batches ran, ",
             local_micro_batches(), " expected");
  for (auto* bn : norms_) bn->batch_statistics = nullptr;
  std::vector<float> sum = sum_.take();
  if (library_allreduce_) comm_.library_allreduce_sum(sum.data(), sum.size());
  else dist::tree_allreduce_sum(comm_, std::span<float>(sum));
  const float scale = 1.0f / static_cast<float>(k_);  // exact: K is a power of two
  int64_t offset = 0;
  std::vector<int64_t> starts;
  for (const Tensor& p : params_) starts.push_back(offset), offset += p.numel();
  for (size_t i = 0; i < params_.size(); ++i) {
    const bool reached = sum[static_cast<size_t>(offset + static_cast<int64_t>(i))] > 0;
    if (reached) params_[i].set_grad(slice_as(sum, starts[i], params_[i], scale).to(params_[i].dtype()));
  }
  offset += static_cast<int64_t>(params_.size());
  NoGradGuard no_grad;
  for (auto* bn : norms_) {
    const int64_t c = bn->running_mean.numel();
    const Tensor mean = slice_as(sum, offset, bn->running_mean, scale);
    const Tensor var = slice_as(sum, offset + c, bn->running_var, scale);
    offset += 2 * c;
    // running ← momentum·batch + (1 − momentum)·running, once per step.
    const double m = bn->momentum;
    copy_(bn->running_mean, add(mul(mean, m), mul(bn->running_mean, 1.0 - m)));
    copy_(bn->running_var, add(mul(var, m), mul(bn->running_var, 1.0 - m)));
    add_(bn->num_batches_tracked, 1.0);
  }
  return static_cast<double>(sum[static_cast<size_t>(offset)]) * (1.0 / static_cast<double>(k_));
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
