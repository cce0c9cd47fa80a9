// ONNX export: every family's graph passes the ONNX checker and strict shape inference, its
// inferred output shape is evit's, and (goldens from tools/reference/check_onnx.py) ONNX Runtime
// running it reproduces evit's forward.
#include <catch2/catch.hpp>

#include "tests/support/test_util.h"
#include "zoo/models.h"

#ifdef EVIT_WITH_ONNX
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "autograd/grad_mode.h"
#include "core/file_io.h"
#include "core/safetensors.h"
#include "ops/ops.h"
#include "train/export.h"
#include "train/onnx/export_onnx.h"
#include "zoo/sam.h"

using namespace evit;
namespace fs = std::filesystem;

namespace {

struct Family {
  const char* model;
  int64_t height, width;
};

// One of each family the export covers, at small inputs.
const Family kFamilies[] = {
    {"efficientvit-b0", 224, 224},
    {"efficientvit-l1", 128, 128},
    {"efficientvit-seg-b0-cityscapes", 128, 256},
    {"efficientvit-seg-l2-ade20k", 128, 128},
    {"efficientvit-sr-x2", 24, 40},
    {"efficientvit-sam-l0", 512, 512},
};

bool is_sam(const std::string& model) { return model.rfind("efficientvit-sam-", 0) == 0; }

std::shared_ptr<zoo::Model> deterministic_model(const std::string& name) {
  auto model = zoo::create_model(name);
  test::fill_deterministic(*model);
  model->eval();
  return model;
}

int64_t count(const train::OnnxCheckReport& r, const std::string& op) {
  auto it = r.op_counts.find(op);
  return it == r.op_counts.end() ? 0 : it->second;
}

}  // namespace

TEST_CASE("every exported family passes the ONNX checker with evit's output shape", "[onnx]") {
  for (const Family& f : kFamilies) {
    INFO(f.model);
    auto model = deterministic_model(f.model);
    for (int64_t batch : {int64_t{2}, int64_t{0}}) {
      INFO("batch " << batch);
      train::OnnxExportOptions o;
      o.height = f.height, o.width = f.width, o.batch = batch;
      const train::OnnxExportResult r = train::export_onnx(*model, f.model, o);
      // The official exports' opsets and interface names.
      const bool sam = is_sam(f.model);
      REQUIRE(r.report.opset == (sam ? 17 : 11));
      REQUIRE(r.report.inputs.size() == 1);
      REQUIRE(r.report.outputs.size() == 1);
      const auto& in = r.report.inputs[0];
      const auto& out = r.report.outputs[0];
      CHECK(in.name == (sam ? "input_image" : "input"));
      CHECK(out.name == (sam ? "image_embeddings" : "output"));
      CHECK(out.type == train::OnnxType::f32);
      // evit's own forward at the example input is what the emitters computed along the way (up to
      // the rounding of the BatchNorm fold, which the export does in f64).
      NoGradGuard no_grad;
      const Tensor y = sam ? dynamic_cast<zoo::EfficientViTSam&>(*model).image_embedding(r.example_input)
                           : model->forward(r.example_input);
      EVIT_REQUIRE_CLOSE(r.example_output, y, 1e-4, 1e-5);
      // Shape inference reaches the output through every node with evit's shape.
      REQUIRE(out.dims.size() == static_cast<size_t>(y.dim()));
      for (int64_t d = 1; d < y.dim(); ++d) CHECK(out.dims[d] == y.size(d));
      if (batch == 0) {
        CHECK(in.dims[0] == -1);
        CHECK(in.dim_params[0] == "batch");
        CHECK(out.dim_params[0] == "batch");
      } else {
        CHECK(out.dims[0] == batch);
      }
      // Deployment form: BatchNorm folded into the convolutions; the graph carries every weight of
      // the folded state dict under its key.
      CHECK(count(r.report, "BatchNormalization") == 0);
      CHECK(count(r.report, "Conv") > 0);
      for (const auto& [key, t] : train::export_folded(*model)) {
        if (key.find("num_batches_tracked") != std::string::npos) continue;
        if (sam && key.rfind("image_encoder.", 0) != 0) continue;  // the decoder's graph has those
        INFO(key);
        auto it = r.report.initializer_numel.find(key);
        REQUIRE(it != r.report.initializer_numel.end());
        CHECK(it->second == t.numel());
      }
    }
  }
}

namespace {

// The cases whose ONNX Runtime outputs are goldens (tools/reference/check_onnx.py): every family in
// f32 at opset 11, one at opset 17 (single-op HardSwish, LayerNormalization), and B0 in f16.
struct RuntimeCase {
  const char* name;
  const char* model;
  int64_t height, width, opset;
  bool half;
  bool sam_decoder = false;
};
const RuntimeCase kRuntimeCases[] = {
    {"b0", "efficientvit-b0", 224, 224, 11, false},
    {"l1", "efficientvit-l1", 128, 128, 11, false},
    {"l1_opset17", "efficientvit-l1", 128, 128, 17, false},
    {"seg_b0_cityscapes", "efficientvit-seg-b0-cityscapes", 128, 256, 11, false},
    {"seg_l2_ade20k", "efficientvit-seg-l2-ade20k", 128, 128, 11, false},
    {"sr_x2", "efficientvit-sr-x2", 24, 40, 11, false},
    {"b0_half", "efficientvit-b0", 224, 224, 17, true},
    {"sam_l0_encoder", "efficientvit-sam-l0", 512, 512, 17, false},
    {"sam_l0_decoder", "efficientvit-sam-l0", 0, 0, 17, false, true},
};

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector<double>()) m = std::max(m, std::abs(v));
  return m;
}

}  // namespace

// With EVIT_ONNX_DUMP=DIR set, writes each case's graph (CASE.onnx) and its inputs and evit's
// outputs (CASE.safetensors: "in:NAME", "out:NAME") for tools/reference/check_onnx.py instead of
// checking.
TEST_CASE("ONNX Runtime running the exported graphs reproduces evit's forward", "[onnx]") {
  const char* dump = std::getenv("EVIT_ONNX_DUMP");
  for (const RuntimeCase& c : kRuntimeCases) {
    INFO(c.name);
    auto model = deterministic_model(c.model);
    train::OnnxExportOptions o;
    o.height = c.height, o.width = c.width, o.opset = c.opset, o.half = c.half, o.batch = 0;
    o.sam_decoder = c.sam_decoder;
    const auto r = train::export_onnx(*model, c.model, o);
    // Image graphs run on the sine input at batch 2; the decoder on the export's example prompts.
    TensorMap inputs = r.example_inputs, outputs = r.example_outputs;
    if (!c.sam_decoder) {
      const Tensor x = test::sine_input({2, 3, c.height, c.width});
      NoGradGuard no_grad;
      inputs = {{r.report.inputs.at(0).name, x}};
      outputs = {{r.report.outputs.at(0).name, is_sam(c.model)
                                                   ? dynamic_cast<zoo::EfficientViTSam&>(*model).image_embedding(x)
                                                   : model->forward(x)}};
    }
    const auto digest = static_cast<int64_t>(r.report.structure_digest);
    if (dump != nullptr) {
      write_file_atomic(std::string(dump) + "/" + c.name + ".onnx", r.bytes);
      TensorMap files{{"digest", from_vector(std::vector<int64_t>{digest}, {1})}};
      for (auto& [k, v] : inputs) files["in:" + k] = v;
      for (auto& [k, v] : outputs) files["out:" + k] = v;
      save_safetensors(std::string(dump) + "/" + c.name + ".safetensors", files,
                       {{"model", c.model}, {"half", c.half ? "true" : "false"}});
      continue;
    }
    // The golden was made from this very graph: same nodes, attributes and weight shapes.
    const auto golden_digest = test::golden_tensor("onnx_runtime", std::string(c.name) + ".digest");
    INFO("the exported graph changed since tools/reference/check_onnx.py made the goldens: rerun it");
    REQUIRE(golden_digest.to_vector<int64_t>().at(0) == digest);
    for (auto& [name, y] : outputs) {
      INFO(name);
      const Tensor ort = test::golden_tensor("onnx_runtime", std::string(c.name) + "." + name);
      // f32: within 1e-4 of the output's scale (measured: 4e-7 to 4e-6). f16: weights and
      // activations rounded to 11 bits through the whole network: 5e-3 of the scale (measured 1e-3).
      EVIT_REQUIRE_CLOSE(ort, y, 0.0, (c.half ? 5e-3 : 1e-4) * max_abs(y));
    }
  }
}

TEST_CASE("the ONNX SAM decoder graph computes what evit's prompt encoder and mask decoder do", "[onnx]") {
  auto model = deterministic_model("efficientvit-sam-l0");
  auto& sam = dynamic_cast<zoo::EfficientViTSam&>(*model);
  train::OnnxExportOptions o;
  o.sam_decoder = true;
  const auto r = train::export_onnx(*model, "efficientvit-sam-l0", o);
  REQUIRE(r.report.opset == 17);
  REQUIRE(r.report.inputs.size() == 3);
  CHECK(r.report.inputs[0].name == "image_embeddings");
  CHECK(r.report.inputs[1].name == "point_coords");
  CHECK(r.report.inputs[1].dim_params == std::vector<std::string>{"batch_size", "num_points", ""});
  CHECK(r.report.inputs[2].name == "point_labels");
  REQUIRE(r.report.outputs.size() == 2);
  CHECK(r.report.outputs[0].name == "masks");
  CHECK(r.report.outputs[0].dims == std::vector<int64_t>{-1, 4, 256, 256});
  CHECK(r.report.outputs[1].name == "iou_predictions");
  CHECK(r.report.outputs[1].dims == std::vector<int64_t>{-1, 4});
  // The example prompt sets through evit's own predictor path: set 0 two clicks, set 1 a click
  // and a box; mask 0 is the single-mask output, 1..3 the multimask ones.
  NoGradGuard no_grad;
  const Tensor embedding = r.example_inputs.at("image_embeddings");
  const std::vector<std::vector<zoo::SamPoint>> points{{{300.5f, 200.25f, 1}, {600.f, 700.f, 0}}, {{512.f, 400.f, 1}}};
  const std::vector<std::optional<std::array<float, 4>>> boxes{std::nullopt, std::array<float, 4>{100, 150, 800, 900}};
  for (int64_t s = 0; s < 2; ++s) {
    INFO("prompt set " << s);
    auto [single_masks, single_iou] = sam.predict(embedding, points[s], boxes[s], false);
    auto [multi_masks, multi_iou] = sam.predict(embedding, points[s], boxes[s], true);
    const Tensor masks = cat({single_masks, multi_masks}, 1), iou = cat({single_iou, multi_iou}, 1);
    EVIT_REQUIRE_CLOSE(slice(r.example_outputs.at("masks"), 0, s, s + 1), masks, 1e-4, 1e-5);
    EVIT_REQUIRE_CLOSE(slice(r.example_outputs.at("iou_predictions"), 0, s, s + 1), iou, 1e-4, 1e-5);
  }
  train::OnnxExportOptions half = o;
  half.half = true;
  REQUIRE_THROWS_WITH(train::export_onnx(*model, "efficientvit-sam-l0", half), Catch::Contains("f32"));
  auto b0 = deterministic_model("efficientvit-b0");
  REQUIRE_THROWS_WITH(train::export_onnx(*b0, "efficientvit-b0", o), Catch::Contains("for SAM models"));
}

TEST_CASE("ONNX LiteMLA takes the linear and the quadratic form where evit does", "[onnx]") {
  // B0 at 128 px: stage 3 (backbone.stages.2, stride 16) has 8x8 = 64 tokens, more than the head
  // dim 16, so the linear form (one Pad per block); stage 4 (backbone.stages.3, stride 32) has
  // 4x4 = 16, so the quadratic form (one ReduceSum per block).
  auto model = deterministic_model("efficientvit-b0");
  train::OnnxExportOptions o;
  o.height = o.width = 128;
  const auto r = train::export_onnx(*model, "efficientvit-b0", o);
  int64_t linear = 0, quadratic = 0;
  for (auto& [name, m] : model->named_modules())
    if (m->type_name() == "LiteMLA") (name.rfind("backbone.stages.2.", 0) == 0 ? linear : quadratic) += 1;
  REQUIRE(linear > 0);
  REQUIRE(quadratic > 0);
  CHECK(count(r.report, "Pad") == linear);
  CHECK(count(r.report, "ReduceSum") == quadratic);
}

TEST_CASE("a half-precision ONNX graph keeps LiteMLA's attention in f32", "[onnx]") {
  auto model = deterministic_model("efficientvit-b0");
  train::OnnxExportOptions o;
  o.height = o.width = 224;
  o.half = true;
  o.opset = 17;
  const auto r = train::export_onnx(*model, "efficientvit-b0", o);
  CHECK(r.report.opset == 17);
  CHECK(r.report.inputs[0].type == train::OnnxType::f16);
  CHECK(r.report.outputs[0].type == train::OnnxType::f16);
  int64_t blocks = 0;
  for (auto& [name, m] : model->named_modules()) blocks += m->type_name() == "LiteMLA";
  REQUIRE(blocks > 0);
  // Two casts per block: into f32 before the attention, back to f16 after it.
  CHECK(count(r.report, "Cast") == 2 * blocks);
  // Opset 17: HardSwish and LayerNormalization as single ops.
  CHECK(count(r.report, "HardSwish") > 0);
  CHECK(count(r.report, "LayerNormalization") == 1);
  CHECK(count(r.report, "HardSigmoid") == 0);
}

TEST_CASE("ONNX export refuses what it cannot write, naming the option", "[onnx]") {
  auto model = deterministic_model("efficientvit-b0");
  train::OnnxExportOptions o;
  o.opset = 10;
  REQUIRE_THROWS_WITH(train::export_onnx(*model, "efficientvit-b0", o),
                      Catch::Contains("opset 10 is not supported") && Catch::Contains("11 to 17"));
  o.opset = 18;
  REQUIRE_THROWS_WITH(train::export_onnx(*model, "efficientvit-b0", o), Catch::Contains("opset 18"));
  o.opset = 0;
  o.height = 200, o.width = 224;
  REQUIRE_THROWS_WITH(train::export_onnx(*model, "efficientvit-b0", o),
                      Catch::Contains("200x224") && Catch::Contains("multiple of 32"));
  o.height = o.width = 0;
  o.batch = -1;
  REQUIRE_THROWS_WITH(train::export_onnx(*model, "efficientvit-b0", o), Catch::Contains("batch"));
  auto sam = zoo::create_model("efficientvit-sam-l0");
  train::OnnxExportOptions wrong_side;
  wrong_side.height = wrong_side.width = 1024;
  REQUIRE_THROWS_WITH(train::export_onnx(*sam, "efficientvit-sam-l0", wrong_side),
                      Catch::Contains("takes 512x512") && Catch::Contains("1024x1024"));
  auto bicubic = zoo::create_model("bicubic-x2");
  REQUIRE_THROWS_WITH(train::export_onnx(*bicubic, "bicubic-x2", {}), Catch::Contains("has no ONNX export"));
  REQUIRE_THROWS_WITH(train::export_onnx(*model, "efficientvit-b9", {}), Catch::Contains("efficientvit-b9"));
}

TEST_CASE("evit export writes a checked ONNX file and rejects bad requests", "[onnx][cli]") {
  const fs::path dir = fs::temp_directory_path() / "evit_onnx_cli";
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto model = deterministic_model("efficientvit-b0");
  const std::string weights = (dir / "b0.safetensors").string();
  model->save(weights);
  const std::string out = (dir / "b0.onnx").string();
  auto [rc, text] = test::run_evit("export efficientvit-b0 --weights " + weights + " --output " + out +
                                   " --input-size 160 --batch dynamic");
  INFO(text);
  REQUIRE(rc == 0);
  CHECK_THAT(text, Catch::Contains("input batchx3x160x160 -> output batchx1000"));
  const auto report = train::check_onnx_bytes(read_file(out), out);
  CHECK(report.outputs.at(0).dims == std::vector<int64_t>{-1, 1000});
  CHECK(report.outputs.at(0).dim_params.at(0) == "batch");

  std::tie(rc, text) = test::run_evit("export efficientvit-b0 --weights " + weights + " --output " + out +
                                      " --input-size 160x15O");
  CHECK(rc != 0);
  CHECK_THAT(text, Catch::Contains("--input-size") && Catch::Contains("160x15O"));
  std::tie(rc, text) = test::run_evit("export efficientvit-b0 --weights " + weights + " --output " + out +
                                      " --batch none");
  CHECK(rc != 0);
  CHECK_THAT(text, Catch::Contains("--batch") && Catch::Contains("'none'"));
  std::tie(rc, text) = test::run_evit("export efficientvit-b0 --weights " + weights + " --output " +
                                      (dir / "b0.pt").string());
  CHECK(rc != 0);
  CHECK_THAT(text, Catch::Contains(".safetensors or .onnx"));
  std::tie(rc, text) = test::run_evit("export efficientvit-b1 --weights " + weights + " --output " + out);
  CHECK(rc != 0);  // weights of another model: the strict load names the mismatch
  CHECK_THAT(text, Catch::Contains("shape"));
}

TEST_CASE("ONNX checking names a file that is no ONNX model", "[onnx]") {
  REQUIRE_THROWS_WITH(train::check_onnx_bytes("not a model", "bad.onnx"),
                      Catch::Contains("bad.onnx") && Catch::Contains("not an ONNX model"));
}

#else

TEST_CASE("ONNX export is built", "[onnx]") {
  evit::test::skip("this build has no ONNX export (install libonnx-dev and libprotobuf-dev; EVIT_ONNX=AUTO)");
}

#endif
