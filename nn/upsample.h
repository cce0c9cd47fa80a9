// UpSample (the reference UpSampleLayer): interpolates by a factor or to a size; identity when
// the factor is 1 or the input already has the target size. Computed in f32/f64 as given.
#pragma once
#include "nn/module.h"
#include "ops/resize.h"

namespace evit::nn {

class UpSample : public Module {
 public:
  UpSample(InterpolateMode mode = InterpolateMode::bicubic, std::vector<int64_t> size = {},
           double factor = 2.0, bool align_corners = false)
      : Module("UpSampleLayer"), mode_(mode), size_(std::move(size)), factor_(factor),
        align_corners_(align_corners) {}
  Tensor forward(const Tensor& x) override {
    if (!size_.empty()) {
      if (x.dim() == 4 && x.size(2) == size_[0] && x.size(3) == size_[1]) return x;
      return interpolate(x, size_, {}, mode_, align_corners_);
    }
    if (factor_ == 1.0) return x;
    return interpolate(x, {}, {factor_, factor_}, mode_, align_corners_);
  }

  InterpolateMode mode() const { return mode_; }
  const std::vector<int64_t>& size() const { return size_; }  // empty: by factor()
  double factor() const { return factor_; }
  bool align_corners() const { return align_corners_; }

 private:
  InterpolateMode mode_;
  std::vector<int64_t> size_;
  double factor_;
  bool align_corners_;
};

}  // namespace evit::nn
