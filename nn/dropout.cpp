#include "nn/dropout.h"

#include "ops/dropout.h"

namespace evit::nn {

namespace {
void check_p(double p, const char* who) {
  EVIT_CHECK(p >= 0.0 && p < 1.0, who, ": p must be in [0, 1), got ", p);
}
}  // namespace

Dropout::Dropout(double p_, Generator* gen) : Module("Dropout"), p(p_), gen_(gen) { check_p(p, "Dropout"); }
Tensor Dropout::forward(const Tensor& x) { return dropout(x, p, is_training(), gen_); }

Dropout2d::Dropout2d(double p_, Generator* gen) : Module("Dropout2d"), p(p_), gen_(gen) {
  check_p(p, "Dropout2d");
}
Tensor Dropout2d::forward(const Tensor& x) { return dropout2d(x, p, is_training(), gen_); }

DropPath::DropPath(double p_, Generator* gen) : Module("DropPath"), p(p_), gen_(gen) { check_p(p, "DropPath"); }
Tensor DropPath::forward(const Tensor& x) { return drop_path(x, p, is_training(), gen_); }

}  // namespace evit::nn
