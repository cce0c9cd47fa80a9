#include "train/onnx/onnx_graph.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <cstring>
#include <set>

#include "core/error.h"
#include "core/half.h"

namespace evit::train {
namespace {

int32_t proto_type(OnnxType t) {
  switch (t) {
    case OnnxType::f32: return ::onnx::TensorProto::FLOAT;
    case OnnxType::f16: return ::onnx::TensorProto::FLOAT16;
    case OnnxType::i64: return ::onnx::TensorProto::INT64;
  }
  return ::onnx::TensorProto::UNDEFINED;
}

OnnxType from_proto_type(int32_t t, const std::string& what) {
  if (t == ::onnx::TensorProto::FLOAT) return OnnxType::f32;
  if (t == ::onnx::TensorProto::FLOAT16) return OnnxType::f16;
  if (t == ::onnx::TensorProto::INT64) return OnnxType::i64;
  EVIT_THROW(what, ": element type ", t, " is not one evit writes (f32, f16, i64)");
}

void set_type(::onnx::ValueInfoProto* vi, const OnnxTensorInfo& info) {
  EVIT_CHECK(info.dim_params.empty() || info.dim_params.size() == info.dims.size(), "ONNX value '", info.name,
             "': ", info.dim_params.size(), " dim names for ", info.dims.size(), " dims");
  vi->set_name(info.name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(proto_type(info.type));
  auto* shape = tt->mutable_shape();
  for (size_t i = 0; i < info.dims.size(); ++i) {
    auto* d = shape->add_dim();
    if (info.dims[i] >= 0) d->set_dim_value(info.dims[i]);
    else d->set_dim_param(info.dim_params.at(i));
  }
}

OnnxTensorInfo read_type(const ::onnx::ValueInfoProto& vi) {
  OnnxTensorInfo info;
  info.name = vi.name();
  EVIT_CHECK(vi.type().has_tensor_type(), "ONNX value '", vi.name(), "' is not a tensor");
  const auto& tt = vi.type().tensor_type();
  info.type = from_proto_type(tt.elem_type(), "ONNX value '" + vi.name() + "'");
  EVIT_CHECK(tt.has_shape(), "ONNX value '", vi.name(), "' has no inferred shape");
  for (const auto& d : tt.shape().dim()) {
    info.dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
    info.dim_params.push_back(d.has_dim_param() ? d.dim_param() : "");
  }
  return info;
}

// Checker, then strict shape inference (a node whose shapes do not agree is an error, not a
// missing annotation), then the inferred output types.
OnnxCheckReport check_model(::onnx::ModelProto model, const std::string& what) {
  try {
    ::onnx::checker::check_model(model);
    ::onnx::shape_inference::InferShapes(model, ::onnx::OpSchemaRegistry::Instance(),
                                         ::onnx::ShapeInferenceOptions(/*check_type=*/true, /*strict=*/1));
  } catch (const std::exception& e) {
    EVIT_THROW(what, ": the ONNX checker rejects the model: ", e.what());
  }
  OnnxCheckReport r;
  {
    ::onnx::ModelProto structure = model;
    for (auto& t : *structure.mutable_graph()->mutable_initializer()) t.clear_raw_data();
    std::string bytes;
    structure.SerializeToString(&bytes);
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
    r.structure_digest = h;
  }
  for (const auto& op : model.opset_import())
    if (op.domain().empty() || op.domain() == "ai.onnx") r.opset = op.version();
  const auto& g = model.graph();
  for (const auto& vi : g.input()) r.inputs.push_back(read_type(vi));
  for (const auto& vi : g.output()) r.outputs.push_back(read_type(vi));
  for (const auto& n : g.node()) ++r.op_counts[n.op_type()];
  r.nodes = g.node_size();
  for (const auto& t : g.initializer()) {
    int64_t n = 1;
    for (int64_t d : t.dims()) n *= d;
    r.initializer_numel[t.name()] = n;
    r.parameters += n;
  }
  return r;
}

}  // namespace

const char* onnx_type_name(OnnxType t) {
  switch (t) {
    case OnnxType::f32: return "f32";
    case OnnxType::f16: return "f16";
    case OnnxType::i64: return "i64";
  }
  return "?";
}

struct OnnxGraph::Impl {
  ::onnx::ModelProto model;
  std::set<std::string> names;
  std::map<std::string, int64_t> counters;
};

OnnxGraph::OnnxGraph(const std::string& graph_name, int64_t opset) : impl_(std::make_unique<Impl>()), opset_(opset) {
  auto& m = impl_->model;
  // IR version 8 (ONNX 1.10-1.12) carries every opset from 11 to 17.
  m.set_ir_version(8);
  m.set_producer_name("evit");
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  m.mutable_graph()->set_name(graph_name);
}

OnnxGraph::~OnnxGraph() = default;

std::string OnnxGraph::fresh_name(const std::string& hint) const {
  const std::string base = hint.empty() ? "v" : hint;
  std::string name = base;
  while (impl_->names.count(name)) name = base + "_" + std::to_string(++impl_->counters[base]);
  return name;
}

std::string OnnxGraph::reserve_name(const std::string& hint) {
  std::string name = fresh_name(hint);
  impl_->names.insert(name);
  return name;
}

void OnnxGraph::add_input(const OnnxTensorInfo& info) {
  EVIT_CHECK(impl_->names.insert(info.name).second, "ONNX graph: the name '", info.name, "' is taken");
  set_type(impl_->model.mutable_graph()->add_input(), info);
}

void OnnxGraph::add_output(const OnnxTensorInfo& info) {
  EVIT_CHECK(impl_->names.count(info.name), "ONNX graph: output '", info.name, "' is no value of the graph");
  set_type(impl_->model.mutable_graph()->add_output(), info);
}

std::string OnnxGraph::add_initializer(const std::string& name, const Tensor& t, OnnxType type) {
  EVIT_CHECK(impl_->names.insert(name).second, "ONNX graph: the name '", name, "' is taken");
  auto* p = impl_->model.mutable_graph()->add_initializer();
  p->set_name(name);
  p->set_data_type(proto_type(type));
  for (int64_t d : t.sizes()) p->add_dims(d);
  std::string raw;  // little-endian, as the format requires and these machines are
  if (type == OnnxType::i64) {
    const auto v = t.to_vector<int64_t>();
    raw.assign(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(int64_t));
  } else {
    EVIT_CHECK(is_floating(t.dtype()), "ONNX initializer '", name, "': ", dtype_name(t.dtype()),
               " tensor for a floating constant");
    const auto v = t.to_vector<float>();
    if (type == OnnxType::f32) {
      raw.assign(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
    } else {
      std::vector<uint16_t> h(v.size());
      for (size_t i = 0; i < v.size(); ++i) h[i] = float_to_half_bits(v[i]);
      raw.assign(reinterpret_cast<const char*>(h.data()), h.size() * sizeof(uint16_t));
    }
  }
  p->set_raw_data(std::move(raw));
  return name;
}

std::string OnnxGraph::add_ints(const std::string& name, const std::vector<int64_t>& values) {
  return add_initializer(name, from_vector(values, {static_cast<int64_t>(values.size())}, TensorOptions(DType::i64)),
                         OnnxType::i64);
}

std::vector<std::string> OnnxGraph::add_node(const std::string& op_type, const std::vector<std::string>& inputs,
                                             const std::vector<OnnxAttr>& attrs, const std::string& hint,
                                             int num_outputs) {
  auto* n = impl_->model.mutable_graph()->add_node();
  n->set_op_type(op_type);
  n->set_name(reserve_name((hint.empty() ? op_type : hint) + "/" + op_type));
  for (const auto& in : inputs) {
    EVIT_CHECK(in.empty() || impl_->names.count(in), "ONNX graph: ", op_type, " node '", n->name(),
               "' reads '", in, "', which nothing produces");
    n->add_input(in);
  }
  std::vector<std::string> outs;
  for (int i = 0; i < num_outputs; ++i) {
    outs.push_back(reserve_name(n->name() + (num_outputs > 1 ? ":" + std::to_string(i) : "")));
    n->add_output(outs.back());
  }
  for (const OnnxAttr& a : attrs) {
    auto* p = n->add_attribute();
    p->set_name(a.name);
    if (const auto* i = std::get_if<int64_t>(&a.value)) {
      p->set_type(::onnx::AttributeProto::INT);
      p->set_i(*i);
    } else if (const auto* f = std::get_if<double>(&a.value)) {
      p->set_type(::onnx::AttributeProto::FLOAT);
      p->set_f(static_cast<float>(*f));
    } else if (const auto* s = std::get_if<std::string>(&a.value)) {
      p->set_type(::onnx::AttributeProto::STRING);
      p->set_s(*s);
    } else if (const auto* is = std::get_if<std::vector<int64_t>>(&a.value)) {
      p->set_type(::onnx::AttributeProto::INTS);
      for (int64_t v : *is) p->add_ints(v);
    } else {
      p->set_type(::onnx::AttributeProto::FLOATS);
      for (double v : std::get<std::vector<double>>(a.value)) p->add_floats(static_cast<float>(v));
    }
  }
  return outs;
}

void OnnxGraph::rename_value(const std::string& from, const std::string& to) {
  EVIT_CHECK(impl_->names.insert(to).second, "ONNX graph: the name '", to, "' is taken");
  auto* g = impl_->model.mutable_graph();
  bool produced = false;
  for (auto& n : *g->mutable_node()) {
    for (auto& out : *n.mutable_output())
      if (out == from) out = to, produced = true;
    for (auto& in : *n.mutable_input())
      if (in == from) in = to;
  }
  EVIT_CHECK(produced, "ONNX graph: no node produces '", from, "'");
  impl_->names.erase(from);
}

std::string OnnxGraph::serialize() const {
  std::string bytes;
  EVIT_CHECK(impl_->model.SerializeToString(&bytes), "ONNX graph '", impl_->model.graph().name(),
             "': protobuf could not serialise it (2 GiB is the format's limit)");
  return bytes;
}

OnnxCheckReport OnnxGraph::check() const { return check_model(impl_->model, "ONNX graph '" + impl_->model.graph().name() + "'"); }

OnnxCheckReport check_onnx_bytes(const std::string& bytes, const std::string& what) {
  ::onnx::ModelProto model;
  EVIT_CHECK(model.ParseFromString(bytes), what, ": not an ONNX model (protobuf parse failed)");
  return check_model(std::move(model), what);
}

}  // namespace evit::train
