// Hostile and mistaken inputs fail early with a message naming what is wrong: sizes beyond the
// documented limits (core/limits.h) are refused before allocating, files that are not regular
// files are refused before reading, config mistakes are caught at start-up, out-of-range label
// ids are counted and reported.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/file_io.h"
#include "core/safetensors.h"
#include "data/dataset.h"
#include "data/eval_transforms.h"
#include "data/image.h"
#include "data/synthetic.h"
#include "support/test_util.h"
#include "train/config.h"
#include "train/evaluator.h"
#include "train/progress.h"
#include "train/run_config.h"
#include "zoo/models.h"

namespace fs = std::filesystem;
using namespace evit;
using json = nlohmann::json;

namespace {

// Sets an environment variable for the scope of one test.
struct EnvGuard {
  std::string name;
  EnvGuard(const std::string& n, const std::string& value) : name(n) { ::setenv(n.c_str(), value.c_str(), 1); }
  ~EnvGuard() { ::unsetenv(name.c_str()); }
};

// The message of the evit::Error `fn` throws (fails the test when it throws none).
template <class Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  FAIL("no error was thrown");
  return "";
}

fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

}  // namespace

TEST_CASE("images above the pixel limit fail from their header, naming the file and the limit", "[reliability]") {
  const fs::path dir = fresh_dir("evit_pixel_limit");
  const std::string png = (dir / "big.png").string();
  encode_png(png, Image(40, 30, 1));
  REQUIRE(read_image(png).height == 40);  // within the default limit
  {
    EnvGuard limit("EVIT_MAX_IMAGE_PIXELS", "1000");
    const std::string msg = error_of([&] { read_image(png); });
    REQUIRE_THAT(msg, Catch::Contains(png));
    REQUIRE_THAT(msg, Catch::Contains("40x30"));
    REQUIRE_THAT(msg, Catch::Contains("EVIT_MAX_IMAGE_PIXELS"));
  }
  const std::string root = test::shared_data_dir();
  if (root.empty()) return test::skip(test::no_shared_data("the JPEG half of the pixel-limit check"));
  const std::string jpg = root + "/coco_val2017_samples/val2017/000000000139.jpg";
  EnvGuard limit("EVIT_MAX_IMAGE_PIXELS", "1000");
  const std::string msg = error_of([&] { read_image(jpg); });
  REQUIRE_THAT(msg, Catch::Contains(jpg));
  REQUIRE_THAT(msg, Catch::Contains("EVIT_MAX_IMAGE_PIXELS"));
  fs::remove_all(dir);
}

TEST_CASE("a resize past the pixel limit (an extreme strip) fails before allocating, naming the image", "[reliability]") {
  data::Sample s;
  s.id = "strip.png";
  s.input = zeros({3, 1, 200});
  Generator g(0);
  EnvGuard limit("EVIT_MAX_IMAGE_PIXELS", "100000");
  // ADE20K's protocol brings the short side to 512: 512 x 102400 pixels.
  const std::string msg = error_of([&] { data::ade20k_eval_resize(512)(s, g); });
  REQUIRE_THAT(msg, Catch::Contains("'strip.png' resized"));
  REQUIRE_THAT(msg, Catch::Contains("above the limit"));
}

TEST_CASE("a thin strip rounded up to the model's stride is bounded like any image", "[reliability]") {
  auto model = zoo::create_model("efficientvit-seg-b0-cityscapes");
  model->eval();
  train::EvalSpec spec;
  spec.task = train::Task::segmentation, spec.num_classes = 19;
  EnvGuard limit("EVIT_MAX_IMAGE_PIXELS", "1000");
  // 1 x 200 becomes 32 x 224 = 7168 pixels before the model sees it.
  const std::string msg = error_of([&] { train::Evaluator(spec).segment(*model, zeros({3, 1, 200}), 1, 200); });
  REQUIRE_THAT(msg, Catch::Contains("1x200 input rounded up"));
  REQUIRE_THAT(msg, Catch::Contains("EVIT_MAX_IMAGE_PIXELS"));
}

TEST_CASE("tensors above the memory limit are refused before allocating, naming the shape", "[reliability]") {
  EnvGuard limit("EVIT_MAX_TENSOR_BYTES", "4096");
  REQUIRE(empty({1024}).numel() == 1024);  // 4096 bytes: at the limit
  const std::string msg = error_of([] { empty({1025}); });
  REQUIRE_THAT(msg, Catch::Contains("[1025]"));
  REQUIRE_THAT(msg, Catch::Contains("EVIT_MAX_TENSOR_BYTES"));
  REQUIRE_THAT(error_of([] { empty({int64_t(1) << 40, int64_t(1) << 40}); }), Catch::Contains("more elements than"));
}

TEST_CASE("weights that are a directory, a device or a lie about their shape are refused clearly", "[reliability]") {
  const fs::path dir = fresh_dir("evit_weights_not_a_file");
  auto model = zoo::create_model("efficientvit-sr-x2");
  REQUIRE_THAT(error_of([&] { model->load(dir.string(), true); }), Catch::Contains("is a directory"));
  if (fs::exists("/dev/zero"))
    REQUIRE_THAT(error_of([&] { model->load("/dev/zero", true); }), Catch::Contains("not a regular file"));
  // A shape [0, 2^64 - 1] has no elements but a dimension no tensor can have.
  const std::string header = R"({"a":{"dtype":"F32","shape":[0,18446744073709551615],"data_offsets":[0,0]}})";
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  bytes += header;
  REQUIRE_THAT(error_of([&] { parse_safetensors(bytes, "lie.safetensors"); }),
               Catch::Contains("exceeds the largest tensor dimension"));
  fs::remove_all(dir);
}

TEST_CASE("an atomic write onto a directory fails without leaving a stray temporary file", "[reliability]") {
  const fs::path dir = fresh_dir("evit_write_onto_dir");
  fs::create_directories(dir / "out.json");
  REQUIRE_THAT(error_of([&] { write_file_atomic((dir / "out.json").string(), "{}"); }), Catch::Contains("is a directory"));
  REQUIRE_FALSE(fs::exists(dir / "out.json.tmp"));
  fs::remove_all(dir);
}

TEST_CASE("config mistakes are caught when the run starts, naming the key", "[reliability]") {
  // A key given twice: JSON parsers keep the last value silently.
  const std::string twice = R"({"task": "segmentation", "model": {"name": "efficientvit-seg-b0-cityscapes"},
    "data": {"root": "d", "dataset": "synthetic", "crop": 64, "crop": 128}, "optimizer": {"lr": 0.001},
    "train": {"steps": 1}, "output_dir": "r"})";
  const std::string msg = error_of([&] { train::load_config_text(twice, "cfg.json", train::training_config_schema()); });
  REQUIRE_THAT(msg, Catch::Contains("config.data.crop is given twice"));

  // Found by fuzzing (tools/fuzz.sh config): a number beyond double's range escaped as a
  // library exception instead of an error naming the file.
  const std::string overflow = error_of([] {
    train::load_config_text("[22622221E2222222]", "cfg.json", train::training_config_schema());
  });
  REQUIRE_THAT(overflow, Catch::Contains("cfg.json") && Catch::Contains("number overflow"));

  // An ignore label that is one of the classes.
  json c = {{"task", "segmentation"},
            {"model", {{"name", "efficientvit-seg-b0-cityscapes"}}},
            {"data", {{"root", "d"}, {"dataset", "synthetic"}, {"ignore_index", 3}}},
            {"optimizer", {{"lr", 1e-3}}},
            {"train", {{"steps", 1}}},
            {"output_dir", "r"}};
  const train::RunConfig rc =
      train::parse_run_config(train::load_config_text(c.dump(), "cfg.json", train::training_config_schema()));
  REQUIRE_THAT(error_of([&] { train::eval_spec(rc, 19); }), Catch::Contains("config.data.ignore_index = 3"));

  // Sizes that could only exhaust memory are outside the schema.
  c["data"]["ignore_index"] = 255;
  c["data"]["crop"] = 100000;
  REQUIRE_THAT(error_of([&] { train::load_config_text(c.dump(), "cfg.json", train::training_config_schema()); }),
               Catch::Contains("crop"));
}

TEST_CASE("label ids outside the dataset's ids are ignored, counted, and reported", "[reliability]") {
  const fs::path root = fresh_dir("evit_label_range");
  data::write_synthetic_cityscapes(root.string(), 1, 1, 32, 48, 1);
  std::string label;
  for (auto& e : fs::recursive_directory_iterator(root / "gtFine" / "val"))
    if (e.is_regular_file()) label = e.path().string();
  Image lab = read_image(label);
  for (int64_t i = 0; i < 5; ++i) lab.data[i] = 200;  // no Cityscapes labelId is above 33
  encode_png(label, lab);
  auto ds = data::cityscapes(root.string(), "val");
  const data::Sample s = ds->load(0);
  REQUIRE(ds->out_of_range_pixels() == 5);
  REQUIRE(s.target.data_ptr<int64_t>()[0] == 255);
  fs::remove_all(root);
}

TEST_CASE("super-resolution evaluation names a model of the wrong scale and images too small to score", "[reliability]") {
  const fs::path dir = fresh_dir("evit_sr_eval_checks");
  encode_png((dir / "tiny.png").string(), Image(8, 8, 3));
  auto [rc, out] = test::run_evit("eval --task super_resolution --model bicubic --scale 2 --data " + dir.string());
  INFO(out);
  REQUIRE(rc != 0);
  REQUIRE_THAT(out, Catch::Contains("tiny.png"));
  REQUIRE_THAT(out, Catch::Contains("at least 15 pixels"));
  encode_png((dir / "tiny.png").string(), Image(32, 32, 3));
  auto [rc2, out2] = test::run_evit("eval --task super_resolution --model efficientvit-sr-x2 --scale 3 --data " + dir.string());
  INFO(out2);
  REQUIRE(rc2 != 0);
  REQUIRE_THAT(out2, Catch::Contains("upscales by 2"));
  fs::remove_all(dir);
}

TEST_CASE("the progress rate of a resumed run counts only the steps done since the resume", "[reliability]") {
  // 10 steps in 1 s after resuming at step 990: 10 it/s, not 1000.
  const std::string line = train::format_progress("train", 1000, 2000, 1.0, {}, 20, 990);
  INFO(line);
  REQUIRE_THAT(line, Catch::Contains("10.0 it/s"));
}
