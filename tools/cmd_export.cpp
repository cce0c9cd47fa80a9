// `evit export MODEL --weights W --output OUT`: deployment files, by the output's extension.
//   OUT.safetensors  BN-folded weights (--fold-bn false keeps the norms)
//   OUT.onnx         an ONNX graph (--opset, --input-size HxW, --batch N|dynamic, --half; SAM:
//                    --sam-part encoder|decoder), checked by the ONNX checker and strict shape
//                    inference before it is written
#include <cstdio>
#include <memory>

#include "core/error.h"
#include "core/file_io.h"
#include "core/safetensors.h"
#include "tools/commands.h"
#include "train/export.h"
#include "zoo/models.h"
#ifdef EVIT_WITH_ONNX
#include "train/onnx/export_onnx.h"
#endif

namespace evit::cli {
namespace {
struct ExportOptions {
  std::string model, weights, output;
  bool fold_bn = true;
  int64_t classes = 0;
  int64_t opset = 0;
  std::string input_size, batch = "1", sam_part = "encoder";
  bool half = false;
};

#ifdef EVIT_WITH_ONNX
int64_t parse_batch(const std::string& text) {
  if (text == "dynamic") return 0;
  try {
    size_t used = 0;
    const int64_t n = std::stoll(text, &used);
    if (used == text.size() && n >= 1) return n;
  } catch (const std::exception&) {
  }
  EVIT_THROW("--batch: expected a positive number or 'dynamic', got '", text, "'");
}

int export_onnx_file(const ExportOptions& o, zoo::Model& model) {
  train::OnnxExportOptions eo;
  eo.opset = o.opset;
  if (!o.input_size.empty()) std::tie(eo.height, eo.width) = parse_size_option("--input-size", o.input_size, true);
  eo.batch = parse_batch(o.batch);
  eo.half = o.half;
  EVIT_CHECK(o.sam_part == "encoder" || o.sam_part == "decoder", "--sam-part: expected encoder or decoder, got '",
             o.sam_part, "'");
  eo.sam_decoder = o.sam_part == "decoder";
  const train::OnnxExportResult r = train::export_onnx(model, o.model, eo);
  write_file_atomic(o.output, r.bytes);
  auto values = [](const std::vector<train::OnnxTensorInfo>& list) {
    std::string s;
    for (const auto& t : list) {
      s += (s.empty() ? "" : ", ") + t.name + " ";
      for (size_t i = 0; i < t.dims.size(); ++i)
        s += (i ? "x" : "") + (t.dims[i] >= 0 ? std::to_string(t.dims[i]) : t.dim_params[i]);
    }
    return s;
  };
  std::printf("wrote %s: opset %lld, %lld nodes, %lld parameters (%s), %s -> %s\n", o.output.c_str(),
              static_cast<long long>(r.report.opset), static_cast<long long>(r.report.nodes),
              static_cast<long long>(r.report.parameters), train::onnx_type_name(r.report.inputs.at(0).type),
              values(r.report.inputs).c_str(), values(r.report.outputs).c_str());
  std::printf("ONNX checker and strict shape inference: passed; graph digest %016llx; ops:",
              static_cast<unsigned long long>(r.report.structure_digest));
  for (const auto& [op, n] : r.report.op_counts) std::printf(" %s %lld", op.c_str(), static_cast<long long>(n));
  std::printf("\n");
  return 0;
}
#endif
}  // namespace

Runner add_export_command(CLI::App& app) {
  auto o = std::make_shared<ExportOptions>();
  auto* cmd = app.add_subcommand(
      "export", "Write deployment files: BN-folded weights (.safetensors) or an ONNX graph (.onnx)");
  cmd->add_option("model", o->model, "Model name (see `evit models`)")->required();
  cmd->add_option("--weights", o->weights, "Trained weights (safetensors), e.g. RUN/checkpoint/model.safetensors")->required();
  cmd->add_option("--output", o->output, "Output file: .safetensors or .onnx")->required();
  cmd->add_option("--fold-bn", o->fold_bn, "safetensors: fold BatchNorm into the preceding convolution (default true)");
  cmd->add_option("--classes", o->classes, "Number of classes the weights were trained with");
  cmd->add_option("--opset", o->opset, "ONNX: opset 11 to 17 (default 11, as the official exports)");
  cmd->add_option("--input-size", o->input_size,
                  "ONNX: input HxW (default 224x224 classification, 512x1024 Cityscapes, 512x512 ADE20K, 256x256 SR)");
  cmd->add_option("--batch", o->batch, "ONNX: batch size, or 'dynamic' (default 1)");
  cmd->add_flag("--half", o->half, "ONNX: f16 weights and activations (LiteMLA attention kept in f32)");
  cmd->add_option("--sam-part", o->sam_part,
                  "ONNX, SAM models: 'encoder' (input_image -> image_embeddings, default) or 'decoder' (prompt "
                  "encoder + mask decoder: image_embeddings, point_coords, point_labels -> masks, iou_predictions)");
  return [o] {
    const bool onnx = o->output.ends_with(".onnx");
    EVIT_CHECK(onnx || o->output.ends_with(".safetensors"), "--output '", o->output,
               "': the extension picks the format; use .safetensors or .onnx");
    const auto& info = zoo::model_info(o->model);
    auto model = zoo::create_model(o->model, info.task == "super_resolution" ? 0 : o->classes);
    model->load(o->weights, true);
    model->eval();
    if (onnx) {
#ifdef EVIT_WITH_ONNX
      return export_onnx_file(*o, *model);
#else
      EVIT_THROW("this evit was built without ONNX export: install libonnx-dev and libprotobuf-dev and rebuild ",
                 "(EVIT_ONNX=AUTO finds them)");
#endif
    }
    TensorMap out = o->fold_bn ? train::export_folded(*model) : model->state_dict();
    save_safetensors(o->output, out, {{"model", o->model}, {"bn_folded", o->fold_bn ? "true" : "false"}});
    std::printf("wrote %s: %zu tensors (%zu before folding)\n", o->output.c_str(), out.size(),
                model->state_dict().size());
    return 0;
  };
}

}  // namespace evit::cli
