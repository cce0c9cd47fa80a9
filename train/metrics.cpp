#include "train/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/dist/tree_reduce.h"
#include "core/parallel.h"

namespace evit::train {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Calls fn with the tensor's elements as a contiguous int64-convertible array.
template <class F>
void with_integer_data(const Tensor& t, const char* what, F&& fn) {
  EVIT_CHECK(t.dtype() == DType::i64 || t.dtype() == DType::i32 || t.dtype() == DType::u8, what,
             " must be an integer tensor (i64, i32 or u8), got ", t.desc());
  Tensor c = t.contiguous();
  switch (c.dtype()) {
    case DType::i64: fn(c.data_ptr<int64_t>()); break;
    case DType::i32: fn(c.data_ptr<int32_t>()); break;
    default: fn(c.data_ptr<uint8_t>()); break;
  }
}
}  // namespace

SegConfusion::SegConfusion(int64_t num_classes, int64_t ignore_index)
    : num_classes_(num_classes), ignore_index_(ignore_index) {
  EVIT_CHECK(num_classes >= 1, "SegConfusion: num_classes must be >= 1, got ", num_classes);
  EVIT_CHECK(ignore_index < 0 || ignore_index >= num_classes, "SegConfusion: ignore_index ", ignore_index,
             " is a valid class of ", num_classes);
  reset();
}

void SegConfusion::reset() {
  inter_.assign(static_cast<size_t>(num_classes_), 0);
  pred_.assign(static_cast<size_t>(num_classes_), 0);
  gt_.assign(static_cast<size_t>(num_classes_), 0);
}

void SegConfusion::update(const Tensor& pred, const Tensor& label) {
  EVIT_CHECK(pred.sizes() == label.sizes(), "SegConfusion: prediction ", pred.desc(), " and label ", label.desc(),
             " differ in shape");
  const int64_t n = label.numel();
  const int64_t C = num_classes_, ignore = ignore_index_;
  const int64_t grain = 1 << 16;
  const int64_t chunks = num_chunks(0, n, grain);
  // Per-chunk counts [I | P | G] and the first bad value seen per chunk; integer sums, so the
  // result does not depend on the order in which chunks finish.
  std::vector<int64_t> counts(static_cast<size_t>(chunks * 3 * C), 0);
  struct Bad {
    int64_t index = -1, value = 0;
    bool is_label = false;
  };
  std::vector<Bad> bad(static_cast<size_t>(chunks));
  with_integer_data(pred, "SegConfusion: prediction", [&](const auto* pp) {
    with_integer_data(label, "SegConfusion: label", [&](const auto* lp) {
      parallel_for(0, n, grain, [&](int64_t b, int64_t e) {
        const int64_t k = b / grain;
        int64_t* I = counts.data() + k * 3 * C;
        int64_t* P = I + C;
        int64_t* G = P + C;
        for (int64_t i = b; i < e; ++i) {
          const int64_t l = static_cast<int64_t>(lp[i]);
          if (l == ignore) continue;
          const int64_t p = static_cast<int64_t>(pp[i]);
          if (l < 0 || l >= C || p < 0 || p >= C) {
            bad[static_cast<size_t>(k)] = {i, (l < 0 || l >= C) ? l : p, l < 0 || l >= C};
            return;
          }
          ++G[l];
          ++P[p];
          if (p == l) ++I[l];
        }
      });
    });
  });
  for (auto& b : bad)
    EVIT_CHECK(b.index < 0, "SegConfusion: ", b.is_label ? "label" : "prediction", " value ", b.value,
               " at element ", b.index, " is outside [0, ", C, ") and is not the ignore index ", ignore);
  for (int64_t k = 0; k < chunks; ++k)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t* I = counts.data() + k * 3 * C;
      inter_[c] += I[c];
      pred_[c] += I[C + c];
      gt_[c] += I[2 * C + c];
    }
}

void SegConfusion::merge(const SegConfusion& o) {
  EVIT_CHECK(o.num_classes_ == num_classes_ && o.ignore_index_ == ignore_index_, "SegConfusion: merging ",
             o.num_classes_, " classes (ignore ", o.ignore_index_, ") into ", num_classes_, " classes (ignore ",
             ignore_index_, ")");
  for (int64_t c = 0; c < num_classes_; ++c) {
    inter_[c] += o.inter_[c];
    pred_[c] += o.pred_[c];
    gt_[c] += o.gt_[c];
  }
}

void SegConfusion::sum_over(dist::Communicator& comm) {
  std::vector<int64_t> counts = inter_;
  counts.insert(counts.end(), pred_.begin(), pred_.end());
  counts.insert(counts.end(), gt_.begin(), gt_.end());
  dist::tree_allreduce_sum(comm, std::span<int64_t>(counts));
  const auto c = static_cast<std::ptrdiff_t>(num_classes_);
  std::copy(counts.begin(), counts.begin() + c, inter_.begin());
  std::copy(counts.begin() + c, counts.begin() + 2 * c, pred_.begin());
  std::copy(counts.begin() + 2 * c, counts.end(), gt_.begin());
}

std::vector<int64_t> SegConfusion::union_counts() const {
  std::vector<int64_t> u(static_cast<size_t>(num_classes_));
  for (int64_t c = 0; c < num_classes_; ++c) u[c] = pred_[c] + gt_[c] - inter_[c];
  return u;
}

int64_t SegConfusion::counted_pixels() const {
  int64_t s = 0;
  for (auto g : gt_) s += g;
  return s;
}

std::vector<double> SegConfusion::iou() const {
  auto u = union_counts();
  std::vector<double> out(static_cast<size_t>(num_classes_));
  for (int64_t c = 0; c < num_classes_; ++c)
    out[c] = u[c] == 0 ? kNaN : static_cast<double>(inter_[c]) / static_cast<double>(u[c]);
  return out;
}

double SegConfusion::miou() const {
  double s = 0.0;
  int64_t present = 0;
  for (double v : iou())
    if (!std::isnan(v)) {
      s += v;
      ++present;
    }
  return present == 0 ? kNaN : 100.0 * s / static_cast<double>(present);
}

double SegConfusion::pixel_accuracy() const {
  int64_t i = 0;
  for (auto v : inter_) i += v;
  const int64_t g = counted_pixels();
  return g == 0 ? kNaN : 100.0 * static_cast<double>(i) / static_cast<double>(g);
}

void TopKAccuracy::update(const Tensor& scores, const Tensor& target) {
  EVIT_CHECK(scores.dim() == 2 && is_floating(scores.dtype()), "TopKAccuracy: scores must be floating [N, C], got ",
             scores.desc());
  EVIT_CHECK(target.dim() == 1 && target.size(0) == scores.size(0), "TopKAccuracy: target must be [N] with N = ",
             scores.size(0), ", got ", target.desc());
  const int64_t N = scores.size(0), C = scores.size(1);
  EVIT_CHECK(C >= 1, "TopKAccuracy: scores have no classes: ", scores.desc());
  std::vector<int64_t> rank(static_cast<size_t>(N));
  with_integer_data(target, "TopKAccuracy: target", [&](const auto* tp) {
    for (int64_t n = 0; n < N; ++n) {
      const int64_t t = static_cast<int64_t>(tp[n]);
      EVIT_CHECK(t >= 0 && t < C, "TopKAccuracy: target ", t, " of sample ", n, " is outside [0, ", C, ")");
    }
    Tensor s = scores.contiguous();
    dispatch_floating(s.dtype(), "TopKAccuracy", [&](auto tag) {
      using T = decltype(tag);
      const T* sp = s.data_ptr<T>();
      for (int64_t n = 0; n < N; ++n) {
        const T* row = sp + n * C;
        const int64_t t = static_cast<int64_t>(tp[n]);
        const T st = row[t];
        int64_t r = 0;
        bool nan = false;
        for (int64_t j = 0; j < C; ++j) {
          nan = nan || std::isnan(row[j]);
          if (row[j] > st || (row[j] == st && j < t)) ++r;
        }
        rank[n] = nan ? C : r;  // C: never within the top k (k <= C)
      }
    });
  });
  for (int64_t n = 0; n < N; ++n) {
    correct1_ += rank[n] < 1 ? 1 : 0;
    correct5_ += rank[n] < std::min<int64_t>(5, C) ? 1 : 0;
  }
  n_ += N;
}

void TopKAccuracy::merge(const TopKAccuracy& o) {
  n_ += o.n_;
  correct1_ += o.correct1_;
  correct5_ += o.correct5_;
}

void TopKAccuracy::sum_over(dist::Communicator& comm) {
  std::vector<int64_t> counts{n_, correct1_, correct5_};
  dist::tree_allreduce_sum(comm, std::span<int64_t>(counts));
  n_ = counts[0], correct1_ = counts[1], correct5_ = counts[2];
}

double TopKAccuracy::top1() const { return n_ == 0 ? kNaN : 100.0 * static_cast<double>(correct1_) / n_; }
double TopKAccuracy::top5() const { return n_ == 0 ? kNaN : 100.0 * static_cast<double>(correct5_) / n_; }

}  // namespace evit::train
