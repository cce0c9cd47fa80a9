#include "zoo/heads.h"

#include "nn/activation.h"
#include "nn/upsample.h"
#include "ops/pointwise.h"
#include "ops/pool.h"
#include "zoo/local_blocks.h"

namespace evit::zoo {
namespace {
std::vector<std::shared_ptr<nn::Module>> cls_ops(const ClsHeadConfig& c) {
  EVIT_CHECK(c.widths.size() == 2, "ClsHead: expected 2 widths, got ", c.widths.size());
  ConvLayerOptions conv{c.in, c.widths[0], 1};
  conv.norm = c.norm;
  conv.act = c.act;
  LinearLayerOptions hidden;
  hidden.in = c.widths[0], hidden.out = c.widths[1];
  hidden.bias = false;
  hidden.norm = {"ln", c.norm.eps};
  hidden.act = c.act;
  LinearLayerOptions out;
  out.in = c.widths[1], out.out = c.classes;
  out.dropout = c.dropout;
  return {std::make_shared<ConvLayer>(conv),
          std::make_shared<nn::Lambda>("AdaptiveAvgPool2d",
                                       [](const Tensor& x) { return adaptive_avg_pool2d(x, {1, 1}); }),
          std::make_shared<LinearLayer>(hidden), std::make_shared<LinearLayer>(out)};
}
}  // namespace

ClsHead::ClsHead(const ClsHeadConfig& c) : OpSequential(cls_ops(c)) {}

SegHead::SegHead(const SegHeadConfig& c) : nn::Module("SegHead"), fids_(c.fids) {
  EVIT_CHECK(c.fids.size() == c.in_channels.size() && c.fids.size() == c.strides.size(),
             "SegHead: fids, in_channels and strides must have the same length");
  input_ops_ = register_module("input_ops", std::make_shared<nn::ModuleList>());
  for (size_t i = 0; i < c.fids.size(); ++i) {
    ConvLayerOptions o{c.in_channels[i], c.width, 1};
    o.norm = c.norm;
    o.act = "";
    auto conv = std::make_shared<ConvLayer>(o);
    const int64_t factor = c.strides[i] / c.head_stride;
    if (factor == 1) {
      input_ops_->push_back(conv);
    } else {
      input_ops_->push_back(std::make_shared<OpSequential>(std::vector<std::shared_ptr<nn::Module>>{
          conv, std::make_shared<nn::UpSample>(InterpolateMode::bicubic, std::vector<int64_t>{},
                                               static_cast<double>(factor))}));
    }
  }
  EVIT_CHECK(c.middle_op == "mbconv" || c.middle_op == "fmbconv", "SegHead: middle_op must be ",
             "mbconv or fmbconv, got '", c.middle_op, "'");
  std::vector<std::shared_ptr<nn::Module>> middle;
  for (int64_t i = 0; i < c.depth; ++i)
    middle.push_back(std::make_shared<ResidualBlock>(
        make_local_block(c.middle_op == "mbconv" ? "mb" : "fmb", c.width, c.width, 1, c.expand,
                         c.norm, c.act, false),
        true));
  middle_ = register_module("middle", std::make_shared<OpSequential>(middle));

  std::vector<std::shared_ptr<nn::Module>> out;
  int64_t w = c.width;
  if (c.final_expand > 0) {
    ConvLayerOptions e{c.width, c.width * c.final_expand, 1};
    e.norm = c.norm;
    e.act = c.act;
    out.push_back(std::make_shared<ConvLayer>(e));
    w = c.width * c.final_expand;
  }
  ConvLayerOptions cls{w, c.classes, 1};
  cls.bias = true;
  cls.dropout = c.dropout;
  cls.norm = {};
  cls.act = "";
  out.push_back(std::make_shared<ConvLayer>(cls));
  output_ops_ = register_module("output_ops", std::make_shared<nn::ModuleList>());
  output_ops_->push_back(std::make_shared<OpSequential>(out));
}

Tensor SegHead::forward_features(const FeatureMap& f) {
  Tensor sum_;
  for (size_t i = 0; i < fids_.size(); ++i) {
    auto it = f.find(fids_[i]);
    EVIT_CHECK(it != f.end(), "SegHead: backbone has no feature '", fids_[i], "'");
    Tensor y = (*input_ops_)[i]->forward(it->second);
    sum_ = sum_.defined() ? add(sum_, y) : y;
  }
  return (*output_ops_)[0]->forward(middle_->forward(sum_));
}

}  // namespace evit::zoo
