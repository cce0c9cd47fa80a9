// View ops: new sizes/strides over the same storage. Their backward maps the gradient back to
// the input's shape (reshape back, inverse permutation, scatter into zeros for slices).
#include <numeric>

#include "autograd/node.h"
#include "ops/pointwise.h"
#include "ops/reduce.h"
#include "ops/shape.h"

namespace evit {
namespace {

Shape infer_shape(const Shape& shape, int64_t numel, const char* op, const Tensor& x) {
  Shape out = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      EVIT_CHECK(infer < 0, op, ": only one dimension can be -1 in ", shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      EVIT_CHECK(out[i] >= 0, op, ": invalid size in ", shape_str(shape));
      known *= out[i];
    }
  }
  if (infer >= 0) {
    EVIT_CHECK(known != 0 && numel % known == 0, op, ": shape ", shape_str(shape),
               " is invalid for input ", x.desc());
    out[infer] = numel / known;
  }
  EVIT_CHECK(shape_numel(out) == numel, op, ": shape ", shape_str(shape),
             " is invalid for input ", x.desc(), " (", numel, " elements)");
  return out;
}

// Strides for viewing x as `shape` without copying, if possible (PyTorch's computeStride rule:
// each group of new dims must map onto a run of old dims that is contiguous within itself).
bool view_strides(const Tensor& x, const Shape& shape, Shape& out) {
  const Shape& os = x.sizes();
  const Shape& ost = x.strides();
  out.assign(shape.size(), 0);
  if (x.numel() == 0) {
    out = contiguous_strides(shape);
    return true;
  }
  int64_t view_d = static_cast<int64_t>(shape.size()) - 1;
  int64_t chunk_base_stride = ost.empty() ? 1 : ost.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t td = static_cast<int64_t>(os.size()) - 1; td >= 0; --td) {
    tensor_numel *= os[td];
    if (td == 0 || (os[td - 1] != 1 && ost[td - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (td > 0) {
        chunk_base_stride = ost[td - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  while (view_d >= 0) {  // trailing size-1 dims of a 0-D input
    out[view_d] = 1;
    --view_d;
  }
  return true;
}

void record_reshape_backward(const Tensor& x, const Tensor& y, const char* name) {
  Shape in_shape = x.sizes();
  autograd::record(name, {x}, {y}, {}, [in_shape](const BackwardContext& ctx) -> std::vector<Tensor> {
    return {reshape(ctx.grad_output(0), in_shape)};
  });
}

}  // namespace

Tensor view(const Tensor& x, const Shape& shape) {
  Shape s = infer_shape(shape, x.numel(), "view", x);
  Shape st;
  EVIT_CHECK(view_strides(x, s, st), "view: cannot view ", x.desc(), " with strides ",
             shape_str(x.strides()), " as ", shape_str(s), "; use reshape() (it copies)");
  Tensor y = make_view(x, s, st, x.storage_offset());
  record_reshape_backward(x, y, "ViewBackward");
  return y;
}

Tensor reshape(const Tensor& x, const Shape& shape) {
  Shape s = infer_shape(shape, x.numel(), "reshape", x);
  Shape st;
  Tensor y;
  if (view_strides(x, s, st)) {
    y = make_view(x, s, st, x.storage_offset());
  } else {
    Tensor c = x.detach().contiguous();
    y = make_view(c, s, contiguous_strides(s), c.storage_offset());
  }
  record_reshape_backward(x, y, "ReshapeBackward");
  return y;
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& order) {
  const int64_t nd = x.dim();
  EVIT_CHECK(static_cast<int64_t>(order.size()) == nd, "permute: order has ", order.size(),
             " dims, tensor ", x.desc(), " has ", nd);
  std::vector<int64_t> ord(nd), inverse(nd);
  std::vector<bool> seen(nd, false);
  Shape sizes(nd), strides(nd);
  for (int64_t i = 0; i < nd; ++i) {
    int64_t d = wrap_dim(order[i], nd, "permute");
    EVIT_CHECK(!seen[d], "permute: dim ", d, " repeated in the order");
    seen[d] = true;
    ord[i] = d;
    inverse[d] = i;
    sizes[i] = x.sizes()[d];
    strides[i] = x.strides()[d];
  }
  Tensor y = make_view(x, sizes, strides, x.storage_offset());
  autograd::record("PermuteBackward", {x}, {y}, {}, [inverse](const BackwardContext& ctx) -> std::vector<Tensor> {
    return {permute(ctx.grad_output(0), inverse)};
  });
  return y;
}

Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
  const int64_t nd = x.dim();
  d0 = wrap_dim(d0, nd, "transpose");
  d1 = wrap_dim(d1, nd, "transpose");
  std::vector<int64_t> order(nd);
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[d0], order[d1]);
  return permute(x, order);
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  dim = wrap_dim(dim, x.dim(), "slice");
  EVIT_CHECK(step >= 1, "slice: step must be >= 1, got ", step);
  const int64_t n = x.sizes()[dim];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape sizes = x.sizes(), strides = x.strides();
  sizes[dim] = (end - start + step - 1) / step;
  strides[dim] *= step;
  Tensor y = make_view(x, sizes, strides, x.storage_offset() + start * x.strides()[dim]);
  Shape in_shape = x.sizes();
  autograd::record("SliceBackward", {x}, {y}, {},
                   [in_shape, dim, start, end, step](const BackwardContext& ctx) -> std::vector<Tensor> {
                     const Tensor& g = ctx.grad_output(0);
                     Tensor gx = zeros(in_shape, {g.dtype(), g.device()});
                     copy_(slice(gx, dim, start, end, step), g);
                     return {gx};
                   });
  return y;
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  dim = wrap_dim(dim, x.dim(), "select");
  const int64_t n = x.sizes()[dim];
  EVIT_CHECK(index >= -n && index < n, "select: index ", index, " out of range for dim ", dim,
             " of size ", n, " in ", x.desc());
  if (index < 0) index += n;
  Shape sizes = x.sizes(), strides = x.strides();
  sizes.erase(sizes.begin() + dim);
  strides.erase(strides.begin() + dim);
  Tensor y = make_view(x, sizes, strides, x.storage_offset() + index * x.strides()[dim]);
  Shape in_shape = x.sizes();
  autograd::record("SelectBackward", {x}, {y}, {},
                   [in_shape, dim, index](const BackwardContext& ctx) -> std::vector<Tensor> {
                     const Tensor& g = ctx.grad_output(0);
                     Tensor gx = zeros(in_shape, {g.dtype(), g.device()});
                     copy_(select(gx, dim, index), g);
                     return {gx};
                   });
  return y;
}

Tensor expand(const Tensor& x, const Shape& shape) {
  const int64_t nd = static_cast<int64_t>(shape.size());
  EVIT_CHECK(nd >= x.dim(), "expand: target ", shape_str(shape), " has fewer dims than ", x.desc());
  Shape sizes(nd), strides(nd);
  const int64_t off = nd - x.dim();
  for (int64_t i = 0; i < nd; ++i) {
    int64_t want = shape[i];
    if (i < off) {
      EVIT_CHECK(want >= 0, "expand: -1 not allowed for new leading dim ", i);
      sizes[i] = want;
      strides[i] = 0;
      continue;
    }
    int64_t have = x.sizes()[i - off];
    if (want == -1) want = have;
    EVIT_CHECK(have == want || have == 1, "expand: cannot expand ", x.desc(), " to ",
               shape_str(shape), " (dim ", i, ": ", have, " vs ", want, ")");
    sizes[i] = want;
    strides[i] = have == want ? x.strides()[i - off] : 0;
  }
  Tensor y = make_view(x, sizes, strides, x.storage_offset());
  Shape in_shape = x.sizes();
  autograd::record("ExpandBackward", {x}, {y}, {}, [in_shape](const BackwardContext& ctx) -> std::vector<Tensor> {
    return {sum_to(ctx.grad_output(0), in_shape)};
  });
  return y;
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  dim = wrap_dim(dim, x.dim(), "squeeze");
  if (x.sizes()[dim] != 1) return x;
  Shape s = x.sizes();
  s.erase(s.begin() + dim);
  return reshape(x, s);
}

Tensor squeeze(const Tensor& x) {
  Shape s;
  for (int64_t d : x.sizes())
    if (d != 1) s.push_back(d);
  return reshape(x, s);
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  dim = wrap_dim(dim, x.dim() + 1, "unsqueeze");
  Shape s = x.sizes();
  s.insert(s.begin() + dim, 1);
  return reshape(x, s);
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  if (x.dim() == 0) return reshape(x, {1});
  start_dim = wrap_dim(start_dim, x.dim(), "flatten");
  end_dim = wrap_dim(end_dim, x.dim(), "flatten");
  EVIT_CHECK(start_dim <= end_dim, "flatten: start_dim ", start_dim, " > end_dim ", end_dim);
  Shape s;
  for (int64_t i = 0; i < start_dim; ++i) s.push_back(x.sizes()[i]);
  int64_t m = 1;
  for (int64_t i = start_dim; i <= end_dim; ++i) m *= x.sizes()[i];
  s.push_back(m);
  for (int64_t i = end_dim + 1; i < x.dim(); ++i) s.push_back(x.sizes()[i]);
  return reshape(x, s);
}

}  // namespace evit
