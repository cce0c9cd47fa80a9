// The config schema layer and the training-config schema: malformed configs give one-line errors
// with the JSON path; --set overrides are typed by the schema; defaults are filled in.
#include "core/error.h"
#include "tests/support/test_util.h"
#include "train/config.h"

using namespace evit;
using train::json;

namespace {

json valid_config() {
  return json::parse(R"({
    "task": "classification",
    "model": {"name": "efficientvit-b1"},
    "data": {"root": "/data/imagenet", "dataset": "imagenet", "crop": 224, "batch_size": 128},
    "optimizer": {"name": "adamw", "lr": 0.002, "weight_decay": 0.1, "betas": [0.9, 0.999]},
    "schedule": {"warmup_epochs": 20},
    "train": {"epochs": 320, "grad_clip": 2.0, "label_smoothing": 0.1},
    "output_dir": "runs/b1"
  })");
}

// The error message of loading `cfg` (with overrides), or "" if it loads.
std::string error_of(const json& cfg, const std::vector<std::string>& overrides = {}) {
  try {
    train::load_config_text(cfg.dump(), "cfg.json", train::training_config_schema(), overrides);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string error_of_text(const std::string& text) {
  try {
    train::load_config_text(text, "cfg.json", train::training_config_schema());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a valid training config loads and gets its defaults", "[config]") {
  json c = train::load_config_text(valid_config().dump(), "cfg.json", train::training_config_schema());
  REQUIRE(c["optimizer"]["lr"] == 0.002);
  REQUIRE(c["optimizer"]["eps"] == 1e-8);
  REQUIRE(c["optimizer"]["no_decay_keywords"] == json::array({"norm", "bias"}));
  REQUIRE(c["data"]["workers"] == 4);
  REQUIRE(c["ema"]["enabled"] == true);  // absent section filled from its defaults
  REQUIRE(c["ema"]["decay"] == 0.9998);
  REQUIRE(c["schedule"]["min_lr"] == 0.0);
  REQUIRE_FALSE(c["schedule"].contains("warmup_steps"));
  REQUIRE(c["train"]["seed"] == 0);
  REQUIRE(c["train"]["grad_clip_mode"] == "value");
  REQUIRE(c["train"]["bucket_mb"] == 16.0);
  REQUIRE(c["model"]["num_classes"].is_null());
  // An integral float for an integer field is accepted and stored as an integer.
  json f = valid_config();
  f["data"]["crop"] = 256.0;
  json cf = train::load_config_text(f.dump(), "cfg.json", train::training_config_schema());
  REQUIRE(cf["data"]["crop"].is_number_integer());
  REQUIRE_FALSE(train::describe_schema(train::training_config_schema()).empty());
}

TEST_CASE("malformed configs give the expected one-line error", "[config]") {
  struct Bad {
    std::string what;
    std::function<void(json&)> edit;
    std::string expect;
  };
  const std::vector<Bad> cases = {
      {"lr as a string", [](json& c) { c["optimizer"]["lr"] = "0.1"; },
       "cfg.json: config.optimizer.lr: expected number, got string"},
      {"misspelt key", [](json& c) { c["model"]["nmae"] = c["model"]["name"]; c["model"].erase("name"); },
       "cfg.json: config.model.nmae: unknown key (did you mean 'name'?)"},
      {"missing required field", [](json& c) { c["data"].erase("root"); },
       "cfg.json: config.data: missing required field 'root'"},
      {"missing section", [](json& c) { c.erase("optimizer"); },
       "cfg.json: config: missing required field 'optimizer'"},
      {"task not allowed", [](json& c) { c["task"] = "clasification"; },
       "cfg.json: config.task: 'clasification' is not one of 'classification', 'segmentation', "
       "'super_resolution', 'sam_distill', 'sam_finetune' (did you mean 'classification'?)"},
      {"optimizer name", [](json& c) { c["optimizer"]["name"] = "adam"; },
       "cfg.json: config.optimizer.name: 'adam' is not one of 'adamw', 'sgd' (did you mean 'adamw'?)"},
      {"negative lr", [](json& c) { c["optimizer"]["lr"] = -0.1; },
       "cfg.json: config.optimizer.lr: must be > 0, got -0.1"},
      {"betas length", [](json& c) { c["optimizer"]["betas"] = {0.9, 0.99, 0.999}; },
       "cfg.json: config.optimizer.betas: expected 2 items, got 3"},
      {"beta out of range", [](json& c) { c["optimizer"]["betas"][1] = 1.0; },
       "cfg.json: config.optimizer.betas[1]: must be < 1, got 1.0"},
      {"fractional integer", [](json& c) { c["data"]["batch_size"] = 2.5; },
       "cfg.json: config.data.batch_size: expected integer, got number 2.5"},
      {"zero batch", [](json& c) { c["data"]["batch_size"] = 0; },
       "cfg.json: config.data.batch_size: must be >= 1, got 0"},
      {"epochs and steps", [](json& c) { c["train"]["steps"] = 1000; },
       "cfg.json: config.train: give only one of 'epochs', 'steps', not both"},
      {"neither epochs nor steps", [](json& c) { c["train"].erase("epochs"); },
       "cfg.json: config.train: one of 'epochs', 'steps' is required"},
      {"bool as string", [](json& c) { c["ema"] = {{"enabled", "yes"}}; },
       "cfg.json: config.ema.enabled: expected boolean, got string"},
      {"warmup given twice", [](json& c) { c["schedule"]["warmup_steps"] = 100; },
       "cfg.json: config.schedule: give only one of 'warmup_epochs', 'warmup_steps', not both"},
      {"null where not nullable", [](json& c) { c["output_dir"] = nullptr; },
       "cfg.json: config.output_dir: expected string, got null"},
      {"empty model name", [](json& c) { c["model"]["name"] = ""; },
       "cfg.json: config.model.name: must not be empty"},
      {"section of wrong type", [](json& c) { c["data"] = json::array(); },
       "cfg.json: config.data: expected object, got array"},
      {"unknown top-level key far from any", [](json& c) { c["zzzzzz"] = 1; },
       "cfg.json: config.zzzzzz: unknown key (known keys: 'task', 'model', 'data', 'optimizer', 'schedule', "
       "'ema', 'train', 'output_dir')"},
      {"empty gradient buckets", [](json& c) { c["train"]["bucket_mb"] = 0; },
       "cfg.json: config.train.bucket_mb: must be > 0, got 0"},
      {"keyword array item", [](json& c) { c["optimizer"]["no_decay_keywords"] = {"norm", 3}; },
       "cfg.json: config.optimizer.no_decay_keywords[1]: expected string, got integer"},
  };
  REQUIRE(cases.size() >= 12);
  for (auto& b : cases) {
    INFO(b.what);
    json c = valid_config();
    b.edit(c);
    const std::string err = error_of(c);
    INFO(err);
    REQUIRE(err.rfind(b.expect + " (", 0) == 0);        // the message, then " (file:line)"
    REQUIRE(err.find('\n') == std::string::npos);        // one line
  }
}

TEST_CASE("all problems are reported, one per line, when asked", "[config]") {
  json c = valid_config();
  c["optimizer"]["lr"] = "x";
  c["data"].erase("root");
  c["model"]["nmae"] = 1;
  try {
    train::load_config_text(c.dump(), "cfg.json", train::training_config_schema(), {}, /*all_errors=*/true);
    FAIL("no error");
  } catch (const Error& e) {
    const std::string s = e.what();
    REQUIRE_THAT(s, Catch::Contains("cfg.json: config.optimizer.lr: expected number, got string"));
    REQUIRE_THAT(s, Catch::Contains("cfg.json: config.data: missing required field 'root'"));
    REQUIRE_THAT(s, Catch::Contains("cfg.json: config.model.nmae: unknown key (did you mean 'name'?)"));
    REQUIRE(std::count(s.begin(), s.end(), '\n') == 2);
  }
}

TEST_CASE("JSON syntax errors name the file, line and column", "[config]") {
  const std::string err = error_of_text("{\n  \"task\": \"classification\",\n  oops\n}");
  REQUIRE_THAT(err, Catch::StartsWith("cfg.json: parse error at line 3, column"));
  REQUIRE(err.find('\n') == std::string::npos);
  REQUIRE_THAT(error_of_text("[1, 2]"), Catch::StartsWith("cfg.json: config: expected object, got array"));
}

TEST_CASE("overrides given with --set are parsed against the schema", "[config]") {
  const auto& schema = train::training_config_schema();
  json c = valid_config();
  train::apply_override(c, schema, "optimizer.lr=1e-3");
  REQUIRE(c["optimizer"]["lr"].is_number_float());
  REQUIRE(c["optimizer"]["lr"] == 1e-3);
  train::apply_override(c, schema, "data.batch_size=64");
  REQUIRE(c["data"]["batch_size"].is_number_integer());
  REQUIRE(c["data"]["batch_size"] == 64);
  train::apply_override(c, schema, "ema.enabled=false");  // creates the absent section
  REQUIRE(c["ema"]["enabled"] == false);
  train::apply_override(c, schema, "model.name=efficientvit-b2");
  REQUIRE(c["model"]["name"] == "efficientvit-b2");
  train::apply_override(c, schema, "data.root=\"/path with spaces\"");
  REQUIRE(c["data"]["root"] == "/path with spaces");
  train::apply_override(c, schema, "optimizer.betas=0.8, 0.95");
  REQUIRE(c["optimizer"]["betas"] == json::array({0.8, 0.95}));
  train::apply_override(c, schema, "optimizer.betas.1=0.9");
  REQUIRE(c["optimizer"]["betas"] == json::array({0.8, 0.9}));
  train::apply_override(c, schema, "optimizer.no_decay_keywords=[\"bias\"]");
  REQUIRE(c["optimizer"]["no_decay_keywords"] == json::array({"bias"}));
  train::apply_override(c, schema, "train.grad_clip=null");
  REQUIRE(c["train"]["grad_clip"].is_null());
  train::apply_override(c, schema, "train.epochs=1e2");
  REQUIRE(c["train"]["epochs"] == 100);
  // The overridden config still validates.
  REQUIRE(error_of(c).empty());

  auto err = [&](const std::string& a) {
    json x = valid_config();
    try {
      train::apply_override(x, schema, a);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  REQUIRE_THAT(err("optimizer.lr=fast"),
               Catch::StartsWith("--set optimizer.lr=fast: config.optimizer.lr: expected number, got 'fast'"));
  REQUIRE_THAT(err("optimizer.lrr=1"),
               Catch::StartsWith("--set optimizer.lrr=1: config.optimizer.lrr: unknown key (did you mean 'lr'?)"));
  REQUIRE_THAT(err("optimizer.lr"), Catch::StartsWith("--set optimizer.lr: expected key=value"));
  REQUIRE_THAT(err("data.batch_size=3.5"),
               Catch::StartsWith("--set data.batch_size=3.5: config.data.batch_size: expected integer, got '3.5'"));
  REQUIRE_THAT(err("ema.enabled=maybe"),
               Catch::StartsWith("--set ema.enabled=maybe: config.ema.enabled: expected boolean (true/false), got 'maybe'"));
  REQUIRE_THAT(err("task.x=1"), Catch::StartsWith("--set task.x=1: config.task: is a string, it has no field 'x'"));
  // Values that parse but break the schema are caught by validation, with the path.
  REQUIRE_THAT(error_of(valid_config(), {"optimizer.name=rmsprop"}),
               Catch::StartsWith("cfg.json: config.optimizer.name: 'rmsprop' is not one of 'adamw', 'sgd'"));
}

TEST_CASE("a hand-built schema: nested objects, arrays, bounds, unknown keys allowed", "[config]") {
  using S = train::Schema;
  S s = S::object({
      {"a", S::object({{"b", S::integer().min(0).max(10).default_value(3)}, {"c", S::array(S::number()).min_size(1)}})},
      {"extra", S::object({}).allow_unknown_keys()},
      {"k", S::integer().one_of({2, 4})},
  });
  REQUIRE(s.validate(json::parse(R"({"a": {"c": [1]}, "extra": {"anything": [1, "x"]}})")).empty());
  REQUIRE(s.with_defaults(json::parse(R"({"a": {"c": [1]}})"))["a"]["b"] == 3);
  REQUIRE(s.validate(json::parse(R"({"a": {"b": 11}})"), "cfg") ==
          std::vector<std::string>{"cfg.a.b: must be <= 10, got 11"});
  REQUIRE(s.validate(json::parse(R"({"a": {"c": []}})")) ==
          std::vector<std::string>{"config.a.c: expected at least 1 items, got 0"});
  REQUIRE(s.validate(json::parse(R"({"k": 3})")) == std::vector<std::string>{"config.k: 3 is not one of 2, 4"});
  json x = json::object();
  train::apply_override(x, s, "extra.free.key=[1,2]");
  REQUIRE(x["extra"]["free"]["key"] == json::array({1, 2}));
  REQUIRE(train::closest_match("wieght_decay", {"weight_decay", "lr"}) == "weight_decay");
  REQUIRE(train::closest_match("zzz", {"weight_decay", "lr"}).empty());
}
