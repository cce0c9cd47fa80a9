// Shared reduction plumbing: dim masks, output shapes, and the "reduced dims last" layout.
#include "ops/reduce.h"
#include "ops/shape.h"

namespace evit {

std::vector<bool> reduction_mask(const Tensor& x, const std::vector<int64_t>& dims, const char* op) {
  std::vector<bool> mask(x.dim(), dims.empty());
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, x.dim(), op);
    EVIT_CHECK(!mask[w] || dims.empty(), op, ": dim ", d, " listed twice");
    mask[w] = true;
  }
  return mask;
}

Shape reduced_shape(const Shape& in, const std::vector<bool>& mask, bool keepdim) {
  Shape out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (!mask[i])
      out.push_back(in[i]);
    else if (keepdim)
      out.push_back(1);
  }
  return out;
}

ReductionRows reduction_rows(const Tensor& x, const std::vector<bool>& mask) {
  std::vector<int64_t> order;
  ReductionRows r;
  for (int64_t i = 0; i < x.dim(); ++i)
    if (!mask[i]) {
      order.push_back(i);
      r.outer *= x.sizes()[i];
    }
  for (int64_t i = 0; i < x.dim(); ++i)
    if (mask[i]) {
      order.push_back(i);
      r.inner *= x.sizes()[i];
    }
  r.data = permute(x.detach(), order).contiguous();
  return r;
}

}  // namespace evit
