// The math of the elementwise losses: per-element loss and derivatives (in f64), compiled for
// the CPU (elementwise.cpp) and for CUDA (elementwise.cu) from this single source.
#pragma once
#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace evit::loss_functors {

// Per-element derivatives of a loss l(x, t, pw).
struct Grads {
  double dx, dt, dpw;
};

struct BceOp {
  static constexpr int kind = 0;  // LossKind in cuda_slots.h
  static constexpr const char* name = "binary_cross_entropy_with_logits";
  static constexpr const char* backward_name = "BinaryCrossEntropyWithLogitsBackward";
  // softplus(-x) = log(1 + exp(-|x|)) + max(-x, 0), stable for any x.
  EVIT_HD static double softplus_neg(double x) { return std::log1p(std::exp(-std::abs(x))) + std::max(-x, 0.0); }
  EVIT_HD static double sigmoid_neg(double x) {  // 1 / (1 + exp(x)), stable
    if (x >= 0) {
      const double e = std::exp(-x);
      return e / (1.0 + e);
    }
    return 1.0 / (1.0 + std::exp(x));
  }
  EVIT_HD double loss(double x, double t, double pw) const {
    return (1.0 - t) * x + (1.0 + (pw - 1.0) * t) * softplus_neg(x);
  }
  EVIT_HD Grads grads(double x, double t, double pw) const {
    const double sp = softplus_neg(x);
    return {(1.0 - t) - (1.0 + (pw - 1.0) * t) * sigmoid_neg(x), -x + (pw - 1.0) * sp, t * sp};
  }
};

struct MseOp {
  static constexpr int kind = 1;  // LossKind in cuda_slots.h
  static constexpr const char* name = "mse_loss";
  static constexpr const char* backward_name = "MseLossBackward";
  EVIT_HD double loss(double x, double t, double) const { return (x - t) * (x - t); }
  EVIT_HD Grads grads(double x, double t, double) const { return {2 * (x - t), -2 * (x - t), 0}; }
};

struct L1Op {
  static constexpr int kind = 2;  // LossKind in cuda_slots.h
  static constexpr const char* name = "l1_loss";
  static constexpr const char* backward_name = "L1LossBackward";
  EVIT_HD double loss(double x, double t, double) const { return std::abs(x - t); }
  EVIT_HD Grads grads(double x, double t, double) const {
    const double d = x - t, s = d > 0 ? 1.0 : (d < 0 ? -1.0 : 0.0);  // sign, 0 at 0 as torch
    return {s, -s, 0};
  }
};

struct SmoothL1Op {
  static constexpr int kind = 3;  // LossKind in cuda_slots.h
  static constexpr const char* name = "smooth_l1_loss";
  static constexpr const char* backward_name = "SmoothL1LossBackward";
  double beta = 1.0;
  EVIT_HD double loss(double x, double t, double) const {
    const double d = std::abs(x - t);
    return d < beta ? 0.5 * d * d / beta : d - 0.5 * beta;
  }
  EVIT_HD Grads grads(double x, double t, double) const {
    const double d = x - t;
    double gdx;
    if (std::abs(d) < beta) gdx = d / beta;
    else gdx = d > 0 ? 1.0 : (d < 0 ? -1.0 : 0.0);
    return {gdx, -gdx, 0};
  }
};

}  // namespace evit::loss_functors
