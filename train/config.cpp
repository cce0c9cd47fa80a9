#include "train/config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "core/file_io.h"
#include "optim/ema.h"  // the EMA defaults

namespace evit::train {

namespace {

const char* type_word(ValueType t) {
  switch (t) {
    case ValueType::Any: return "any value";
    case ValueType::Bool: return "boolean";
    case ValueType::Integer: return "integer";
    case ValueType::Number: return "number";
    case ValueType::String: return "string";
    case ValueType::Array: return "array";
    case ValueType::Object: return "object";
  }
  return "?";
}

bool is_integral_number(const json& v) {
  if (v.is_number_integer()) return true;
  if (!v.is_number_float()) return false;
  const double d = v.get<double>();
  return std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.0e15;
}

bool type_matches(ValueType t, const json& v) {
  switch (t) {
    case ValueType::Any: return true;
    case ValueType::Bool: return v.is_boolean();
    case ValueType::Integer: return is_integral_number(v);
    case ValueType::Number: return v.is_number();
    case ValueType::String: return v.is_string();
    case ValueType::Array: return v.is_array();
    case ValueType::Object: return v.is_object();
  }
  return false;
}

// Numbers printed the way a user would write them (1e-08 -> 1e-08, 0.5 -> 0.5, 3 -> 3).
std::string show(const json& v) {
  if (v.is_string()) {
    // Appended piecewise: GCC 12 warns (-Wrestrict, falsely) on "'" + s + "'".
    std::string s(1, '\'');
    s += v.get<std::string>();
    s += '\'';
    return s;
  }
  return v.dump();
}

std::string show_number(double d) {
  std::ostringstream os;
  os << d;
  return os.str();
}

std::string join_quoted(const std::vector<std::string>& keys, const char* sep = ", ") {
  std::string s;
  for (size_t i = 0; i < keys.size(); ++i) s += (i ? sep : "") + ("'" + keys[i] + "'");
  return s;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Optimal-string-alignment distance: edits, with a swap of two neighbours counted as one.
size_t edit_distance(const std::string& a, const std::string& b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i)
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[n][m];
}

bool present(const json& obj, const std::string& key) { return obj.contains(key) && !obj.at(key).is_null(); }

std::vector<std::string> field_names(const Schema& s) {
  std::vector<std::string> out;
  for (auto& [k, f] : s.fields()) out.push_back(k);
  return out;
}

std::string unknown_key_message(const std::string& key, const Schema& s) {
  auto names = field_names(s);
  std::string best = closest_match(key, names);
  if (!best.empty()) return "unknown key (did you mean '" + best + "'?)";
  return "unknown key (known keys: " + join_quoted(names) + ")";
}

}  // namespace

const char* json_type_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_array()) return "array";
  return "object";
}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = static_cast<size_t>(-1);
  const std::string w = lower(word);
  for (auto& c : candidates) {
    const size_t d = edit_distance(w, lower(c));
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  // Close enough to be a typo: about one edit per four characters, at least one.
  const size_t limit = 1 + std::min(word.size(), best.size()) / 4;
  return best_d <= limit ? best : "";
}

const Schema* Schema::field(const std::string& key) const {
  for (auto& [k, f] : fields_)
    if (k == key) return &f;
  return nullptr;
}

std::vector<std::string> Schema::validate(const json& value, const std::string& path) const {
  std::vector<std::string> out;
  validate_into(value, path, out);
  return out;
}

void Schema::validate_into(const json& v, const std::string& path, std::vector<std::string>& out) const {
  auto fail = [&](const std::string& msg) { out.push_back(path + ": " + msg); };
  if (v.is_null()) {
    if (!nullable_ && type_ != ValueType::Any) fail(std::string("expected ") + type_word(type_) + ", got null");
    return;
  }
  if (!type_matches(type_, v)) {
    std::string got = json_type_name(v);
    // A fractional number where an integer is expected: show it, the type name alone confuses.
    if (type_ == ValueType::Integer && v.is_number()) got += " " + v.dump();
    fail(std::string("expected ") + type_word(type_) + ", got " + got);
    return;
  }
  if (!allowed_.empty()) {
    bool ok = false;
    for (auto& a : allowed_) ok = ok || a == v || (a.is_number() && v.is_number() && a.get<double>() == v.get<double>());
    if (!ok) {
      std::string list, hint;
      std::vector<std::string> names;
      for (size_t i = 0; i < allowed_.size(); ++i) {
        list += (i ? ", " : "") + show(allowed_[i]);
        if (allowed_[i].is_string()) names.push_back(allowed_[i].get<std::string>());
      }
      if (v.is_string()) {
        std::string best = closest_match(v.get<std::string>(), names);
        if (!best.empty()) hint = " (did you mean '" + best + "'?)";
      }
      fail(show(v) + " is not one of " + list + hint);
      return;
    }
  }
  if (v.is_number()) {
    const double d = v.get<double>();
    if (!std::isfinite(d)) return fail("must be a finite number, got " + v.dump());
    if (min_ && (min_excl_ ? !(d > *min_) : !(d >= *min_)))
      return fail(std::string("must be ") + (min_excl_ ? "> " : ">= ") + show_number(*min_) + ", got " + v.dump());
    if (max_ && (max_excl_ ? !(d < *max_) : !(d <= *max_)))
      return fail(std::string("must be ") + (max_excl_ ? "< " : "<= ") + show_number(*max_) + ", got " + v.dump());
  }
  if (v.is_string() && min_size_ && v.get<std::string>().size() < *min_size_)
    return fail(*min_size_ == 1 ? "must not be empty" : "must have at least " + std::to_string(*min_size_) + " characters");
  if (v.is_array()) {
    const size_t n = v.size();
    if (min_size_ && max_size_ && *min_size_ == *max_size_ && n != *min_size_)
      return fail("expected " + std::to_string(*min_size_) + " items, got " + std::to_string(n));
    if (min_size_ && n < *min_size_) return fail("expected at least " + std::to_string(*min_size_) + " items, got " + std::to_string(n));
    if (max_size_ && n > *max_size_) return fail("expected at most " + std::to_string(*max_size_) + " items, got " + std::to_string(n));
    if (items_)
      for (size_t i = 0; i < n; ++i) items_->validate_into(v[i], path + "[" + std::to_string(i) + "]", out);
  }
  if (v.is_object() && type_ == ValueType::Object) {
    // Unknown keys first: a misspelt required field is reported as the typo it is.
    if (!allow_unknown_)
      for (auto& [k, x] : v.items())
        if (!field(k)) out.push_back(path + "." + k + ": " + unknown_key_message(k, *this));
    for (auto& [k, f] : fields_) {
      if (!v.contains(k)) {
        if (f.required_) fail("missing required field '" + k + "'");
        continue;
      }
      f.validate_into(v.at(k), path + "." + k, out);
    }
    for (auto& group : exactly_one_) {
      std::vector<std::string> given;
      for (auto& k : group)
        if (present(v, k)) given.push_back(k);
      if (given.empty()) fail("one of " + join_quoted(group) + " is required");
      if (given.size() > 1) fail("give only one of " + join_quoted(given) + ", not both");
    }
    for (auto& group : at_most_one_) {
      std::vector<std::string> given;
      for (auto& k : group)
        if (present(v, k)) given.push_back(k);
      if (given.size() > 1) fail("give only one of " + join_quoted(given) + ", not both");
    }
  }
}

json Schema::with_defaults(const json& value) const {
  if (value.is_null()) return value;
  if (type_ == ValueType::Integer && value.is_number_float()) return json(static_cast<int64_t>(value.get<double>()));
  if (type_ == ValueType::Array && value.is_array() && items_) {
    json out = json::array();
    for (auto& x : value) out.push_back(items_->with_defaults(x));
    return out;
  }
  if (type_ != ValueType::Object || !value.is_object()) return value;
  json out = value;
  for (auto& [k, f] : fields_) {
    if (value.contains(k)) {
      out[k] = f.with_defaults(value.at(k));
    } else if (f.default_) {
      out[k] = f.with_defaults(*f.default_);
    } else if (f.type_ == ValueType::Object && !f.required_) {
      // An absent optional section whose fields all have defaults (or are optional) is filled in.
      bool needs_input = false;
      for (auto& [kk, ff] : f.fields_) needs_input = needs_input || ff.required_;
      needs_input = needs_input || !f.exactly_one_.empty();
      if (!needs_input) out[k] = f.with_defaults(json::object());
    }
  }
  return out;
}

json Schema::parse_text(const std::string& raw, const std::string& path) const {
  const std::string text = trim(raw);
  auto fail = [&](const std::string& what) -> json {
    EVIT_THROW(path, ": expected ", what, ", got '", text, "'");
  };
  if (text == "null" && (nullable_ || type_ == ValueType::Any)) return json(nullptr);
  switch (type_) {
    case ValueType::Bool: {
      const std::string t = lower(text);
      if (t == "true" || t == "yes" || t == "on" || t == "1") return json(true);
      if (t == "false" || t == "no" || t == "off" || t == "0") return json(false);
      return fail("boolean (true/false)");
    }
    case ValueType::Integer: {
      int64_t i = 0;
      auto r = std::from_chars(text.data(), text.data() + text.size(), i);
      if (!text.empty() && r.ec == std::errc() && r.ptr == text.data() + text.size()) return json(i);
      double d = 0;
      auto r2 = std::from_chars(text.data(), text.data() + text.size(), d);
      if (!text.empty() && r2.ec == std::errc() && r2.ptr == text.data() + text.size() && std::isfinite(d) &&
          std::floor(d) == d && std::fabs(d) < 9.0e15)
        return json(static_cast<int64_t>(d));  // "1e4" for a step count
      return fail("integer");
    }
    case ValueType::Number: {
      double d = 0;
      auto r = std::from_chars(text.data(), text.data() + text.size(), d);
      if (text.empty() || r.ec != std::errc() || r.ptr != text.data() + text.size() || !std::isfinite(d))
        return fail("number");
      return json(d);
    }
    case ValueType::String:
      if (text.size() >= 2 && text.front() == '"' && text.back() == '"') {
        json j = json::parse(text, nullptr, false);
        if (!j.is_discarded() && j.is_string()) return j;
      }
      return json(text);
    case ValueType::Array: {
      if (!text.empty() && text.front() == '[') {
        json j = json::parse(text, nullptr, false);
        if (j.is_discarded() || !j.is_array()) return fail("a JSON array");
        return j;
      }
      json out = json::array();
      if (text.empty()) return out;
      std::stringstream ss(text);
      std::string item;
      size_t i = 0;
      while (std::getline(ss, item, ',')) {
        const std::string p = path + "[" + std::to_string(i++) + "]";
        out.push_back(items_ ? items_->parse_text(item, p) : Schema::any().parse_text(item, p));
      }
      return out;
    }
    case ValueType::Object: {
      json j = json::parse(text, nullptr, false);
      if (j.is_discarded() || !j.is_object()) return fail("a JSON object");
      return j;
    }
    case ValueType::Any: {
      json j = json::parse(text, nullptr, false);
      return j.is_discarded() ? json(text) : j;
    }
  }
  return json(text);
}

void apply_override(json& cfg, const Schema& schema, const std::string& assignment) {
  const std::string where = "--set " + assignment + ": ";
  const auto eq = assignment.find('=');
  EVIT_CHECK(eq != std::string::npos && eq > 0, where, "expected key=value (e.g. optimizer.lr=0.001)");
  const std::string key = trim(assignment.substr(0, eq)), text = assignment.substr(eq + 1);
  std::vector<std::string> parts;
  {
    std::stringstream ss(key);
    std::string p;
    while (std::getline(ss, p, '.')) parts.push_back(p);
  }
  for (auto& p : parts) EVIT_CHECK(!p.empty(), where, "empty key segment in '", key, "'");
  if (cfg.is_null()) cfg = json::object();
  const Schema* node = &schema;
  json* target = &cfg;
  std::string path = "config";
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& seg = parts[i];
    const bool last = i + 1 == parts.size();
    const Schema* child = nullptr;
    static const Schema any_schema = Schema::any();
    if (node->type() == ValueType::Array) {
      size_t idx = 0;
      auto r = std::from_chars(seg.data(), seg.data() + seg.size(), idx);
      EVIT_CHECK(r.ec == std::errc() && r.ptr == seg.data() + seg.size(), where, path, ": '", seg,
                 "' is not an array index");
      if (!target->is_array()) *target = json::array();
      EVIT_CHECK(idx <= target->size(), where, path, ": index ", idx, " is past the end (", target->size(), " items)");
      child = node->items() ? node->items() : &any_schema;
      path += "[" + seg + "]";
      if (idx == target->size()) target->push_back(json());
      json& slot = (*target)[idx];
      if (last) {
        slot = child->parse_text(text, where + path);
        return;
      }
      node = child;
      target = &slot;
      continue;
    }
    path += "." + seg;
    if (node->type() == ValueType::Object) {
      child = node->field(seg);
      if (!child) {
        // Unknown keys are allowed only where the schema says so; their values are read as JSON.
        EVIT_CHECK(node->allows_unknown_keys(), where, path, ": ", unknown_key_message(seg, *node));
        child = &any_schema;
      }
    } else if (node->type() == ValueType::Any) {
      child = &any_schema;
    } else {
      EVIT_THROW(where, path.substr(0, path.rfind('.')), ": is a ", type_word(node->type()), ", it has no field '", seg, "'");
    }
    if (!target->is_object()) {
      EVIT_CHECK(target->is_null(), where, path.substr(0, path.rfind('.')), ": is a ", json_type_name(*target),
                 ", it has no field '", seg, "'");
      *target = json::object();
    }
    json& slot = (*target)[seg];
    if (last) {
      // The path handed to parse_text carries the "--set ...: " prefix of the message.
      slot = child->parse_text(text, where + path);
      return;
    }
    node = child;
    target = &slot;
  }
}

namespace {

// json::parse, except that a key repeated within one object is an error (plain parsing keeps the
// last value silently, so a config that sets data.crop twice would train at a size nobody chose).
json parse_rejecting_duplicate_keys(const std::string& text, const std::string& source) {
  struct Level {
    std::set<std::string> keys;
    std::string last_key;
  };
  std::vector<Level> levels;
  std::string duplicate;
  json cfg = json::parse(text, [&](int, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::object_start) levels.emplace_back();
    else if (ev == json::parse_event_t::object_end && !levels.empty()) levels.pop_back();
    else if (ev == json::parse_event_t::key && !levels.empty()) {
      std::string k = parsed.get<std::string>();
      if (!levels.back().keys.insert(k).second && duplicate.empty()) {
        duplicate = "config";
        for (size_t i = 0; i + 1 < levels.size(); ++i) duplicate += "." + levels[i].last_key;
        duplicate += "." + k;
      }
      levels.back().last_key = k;
    }
    return true;
  });
  EVIT_CHECK(duplicate.empty(), source, ": ", duplicate, " is given twice (JSON would silently keep the last value)");
  return cfg;
}

}  // namespace

json load_config_text(const std::string& text, const std::string& source, const Schema& schema,
                      const std::vector<std::string>& overrides, bool all_errors) {
  json cfg;
  try {
    cfg = parse_rejecting_duplicate_keys(text, source);
  } catch (const json::exception& e) {
    // Syntax errors and out-of-range numbers ("1e999"); nlohmann's message:
    // "[json.exception.parse_error.101] parse error at line 3, column 5: ...".
    std::string msg = e.what();
    const auto pos = msg.find("] ");
    if (pos != std::string::npos) msg = msg.substr(pos + 2);
    EVIT_THROW(source, ": ", msg);
  }
  for (auto& o : overrides) apply_override(cfg, schema, o);
  auto problems = schema.validate(cfg, "config");
  if (!problems.empty()) {
    if (!all_errors) EVIT_THROW(source, ": ", problems.front());
    std::string joined;
    for (size_t i = 0; i < problems.size(); ++i) joined += (i ? "\n" : "") + source + ": " + problems[i];
    EVIT_THROW(joined);
  }
  return schema.with_defaults(cfg);
}

json load_config_file(const std::string& path, const Schema& schema, const std::vector<std::string>& overrides,
                      bool all_errors) {
  return load_config_text(read_file(path), path, schema, overrides, all_errors);
}

std::string describe_schema(const Schema& schema, const std::string& prefix) {
  std::string out;
  for (auto& [k, f] : schema.fields()) {
    const std::string name = prefix.empty() ? k : prefix + "." + k;
    if (f.type() == ValueType::Object && !f.fields().empty()) {
      out += describe_schema(f, name);
      continue;
    }
    out += name + "  " + type_word(f.type());
    if (f.is_required()) out += " (required)";
    if (f.default_val()) out += " = " + f.default_val()->dump();
    if (!f.description().empty()) out += "  " + f.description();
    out += "\n";
  }
  return out;
}

const Schema& training_config_schema() {
  using S = Schema;
  static const Schema schema = [] {
    auto pos_int = S::integer().min(1);
    auto prob = S::number().min(0).max(1, true);
    S model = S::object({
        {"name", S::string().required().min_size(1).doc("zoo name, e.g. efficientvit-b1 (see `evit models`)")},
        {"num_classes", S::integer().min(1).nullable().default_value(nullptr).doc(
                            "null: the dataset's class count; else it must equal it")},
        {"pretrained", S::string().default_value("").doc("safetensors weights to start from")},
    });
    S data = S::object({
        {"root", S::string().required().min_size(1).doc("dataset folder")},
        {"dataset", S::string().required().min_size(1).doc("imagenet, cityscapes, ade20k, div2k, ffhq, synthetic, ...")},
        {"crop", pos_int.max(8192).default_value(224).doc("training crop size (pixels); SAM tasks: the model's input side (512 for L models, 1024 for XL)")},
        {"eval_size", pos_int.max(8192).nullable().default_value(nullptr).doc("null: same as crop")},
        {"crop_ratio", S::number().min(0, true).max(1).default_value(0.95).doc(
                           "classification evaluation: resize to ceil(eval_size / crop_ratio), then centre-crop")},
        {"batch_size", pos_int.default_value(128)},
        {"micro_batches", pos_int.max(65536).default_value(1).doc(
                              "splits each global batch into this many fixed micro-batches (a power of two): "
                              "the weights after N steps are then bitwise the same on 1, 2, 4, ... ranks "
                              "(docs/distributed.md)")},
        {"workers", S::integer().min(0).max(256).default_value(4).doc("loader threads (0: load in the training thread)")},
        {"ignore_index", S::integer().default_value(255)},
        {"scale", S::integer().one_of({2, 3, 4}).default_value(2).doc("super-resolution factor")},
        {"lr_root", S::string().default_value("").doc("super-resolution: LR images (train/ and val/, or DIV2K's "
                                                      "DIV2K_{train,valid}_LR_bicubic/X<scale>); empty: bicubic imresize of HR")},
        {"mean", S::array(S::number()).size(3, 3).default_value(json::array({0.485, 0.456, 0.406}))},
        {"std", S::array(S::number().min(0, true)).size(3, 3).default_value(json::array({0.229, 0.224, 0.225}))},
        {"drop_last", S::boolean().default_value(true)},
        {"multires_sizes", S::array(S::integer().min(8).max(8192)).default_value(json::array()).doc(
                               "classification: each training batch is resized to a size drawn from this list")},
        {"limit", S::integer().min(0).default_value(0).doc("use only the first N samples (0: all)")},
        {"embeddings", S::string().default_value("").doc(
                           "sam_distill: the teacher-embedding cache (evit embed's output folder)")},
        {"teacher", S::string().default_value("sam-vit-h").doc("sam_distill: the teacher encoder")},
        {"teacher_weights", S::string().default_value("").doc(
                                "sam_distill: teacher weights; when given, images missing from the cache are embedded first")},
        {"masks_per_image", pos_int.max(1024).default_value(64).doc(
                                "sam_finetune: masks drawn per training image (repeated when the image has fewer)")},
        {"val_masks", S::integer().min(0).default_value(16).doc(
                          "SAM tasks: box mIoU scores the first N annotations of each validation image (0: all)")},
    });
    S optimizer = S::object({
        {"name", S::string().one_of({"adamw", "sgd"}).default_value("adamw")},
        {"lr", S::number().min(0, true).required().doc("peak learning rate")},
        {"weight_decay", S::number().min(0).default_value(0.1)},
        {"betas", S::array(prob).size(2, 2).default_value(json::array({0.9, 0.999}))},
        {"eps", S::number().min(0, true).default_value(1e-8)},
        {"momentum", prob.default_value(0.9).doc("sgd only")},
        {"nesterov", S::boolean().default_value(false).doc("sgd only")},
        {"no_decay_keywords", S::array(S::string().min_size(1)).default_value(json::array({"norm", "bias"}))},
    });
    S schedule = S::object({
                     {"name", S::string().one_of({"cosine", "constant"}).default_value("cosine")},
                     {"warmup_epochs", S::number().min(0).doc("linear warmup length (or warmup_steps)")},
                     {"warmup_steps", S::integer().min(0)},
                     {"total_epochs", S::number().min(0, true).doc("warmup + cosine; default: the training length")},
                     {"total_steps", pos_int},
                     {"warmup_lr", S::number().min(0).default_value(0.0)},
                     {"min_lr", S::number().min(0).default_value(0.0).doc("cosine floor")},
                 })
                     .at_most_one_of({"warmup_epochs", "warmup_steps"})
                     .at_most_one_of({"total_epochs", "total_steps"});
    S ema = S::object({
        {"enabled", S::boolean().default_value(true)},
        {"decay", S::number().min(0).max(1).default_value(optim::EMAOptions{}.decay)},
        {"warmup_steps", S::number().min(0).default_value(optim::EMAOptions{}.warmup_steps)},
    });
    S train = S::object({
                  {"epochs", pos_int.doc("training length in epochs (or steps)")},
                  {"steps", pos_int},
                  {"eval_every", pos_int.default_value(1).doc("in the unit of the training length")},
                  {"checkpoint_every", pos_int.default_value(1).doc("in the unit of the training length")},
                  {"log_every", pos_int.default_value(50).doc("steps")},
                  {"seed", S::integer().min(0).default_value(0)},
                  {"grad_clip", S::number().min(0, true).nullable().default_value(2.0).doc("null: no clipping")},
                  {"grad_clip_mode", S::string().one_of({"value", "norm"}).default_value("value")},
                  {"label_smoothing", prob.default_value(0.0)},
                  {"loss", S::string().one_of({"ce", "bce"}).default_value("ce").doc(
                               "classification: cross-entropy, or BCE-with-logits on soft targets (the reference recipe)")},
                  {"drop_path", prob.default_value(0.0)},
                  {"drop_path_skip", S::integer().min(0).default_value(0)},
                  {"random_erasing", prob.default_value(0.0).doc("classification: RandomErasing probability")},
                  {"rand_augment", S::string().default_value("").doc(
                                       "classification: timm RandAugment string, e.g. \"rand-n2-m5-mstd1.0-inc1\"; \"\" = off")},
                  {"mesa_weight", S::number().min(0).default_value(0.0).doc(
                                      "classification: MESA self-distillation weight (needs EMA); 0 = off")},
                  {"mesa_start", prob.default_value(0.25).doc("training progress at which MESA starts")},
                  {"reset_bn_batches", S::integer().min(0).default_value(0).doc(
                                           "re-estimate BatchNorm statistics on this many training batches before each evaluation")},
                  {"eval_at_start", S::boolean().default_value(false).doc(
                                        "evaluate the starting weights before the first step (a baseline, logged as step 0)")},
                  {"mixup_alpha", S::number().min(0).default_value(0.0)},
                  {"cutmix_alpha", S::number().min(0).default_value(0.0)},
                  {"multimask_prob", prob.default_value(0.5).doc(
                                         "sam_finetune: chance that a step predicts three masks per prompt (else one), as the reference")},
                  {"mask_points", pos_int.default_value(112 * 112).doc(
                                      "sam_finetune: points per mask at which the loss is computed (PointRend sampling)")},
                  {"threads", S::integer().min(0).default_value(0).doc("0: all cores")},
                  {"allreduce", S::string().one_of({"tree", "library"}).default_value("tree").doc(
                                    "data-parallel gradient sum: \"tree\" (fixed order: bitwise the same on any number of "
                                    "processes) or \"library\" (MPI's own all-reduce: faster, bits depend on the process count)")},
                  {"gpu_transport", S::string().one_of({"auto", "nccl", "host"}).default_value("auto").doc(
                                        "how CUDA gradients travel between processes: \"nccl\" (GPU to GPU), \"host\" (through "
                                        "host memory and MPI) or \"auto\" (NCCL when the build has it and no two processes share "
                                        "a GPU); the bits are the same either way")},
                  {"overlap_backward", S::boolean().default_value(true).doc(
                                           "data-parallel: send gradient buckets to the other processes while backward "
                                           "still runs (CPU models, and CUDA models on NCCL); false: after backward. The "
                                           "bits are the same either way")},
                  {"bucket_mb", S::number().min(0, true).default_value(16.0).doc(
                                    "data-parallel: MiB of gradients per bucket sent while backward runs (at least; a "
                                    "bucket ends at a parameter's end). Larger buckets pay over slower networks, where "
                                    "each bucket's start costs a round trip; the bits are the same either way")},
                  {"device", S::string().default_value("cpu").doc("\"cpu\", \"cuda\" or \"cuda:N\"")},
                  {"amp", S::string().one_of({"off", "f16", "bf16"}).default_value("off").doc(
                              "CUDA mixed precision: GEMMs and convolutions in f16/bf16 (f16 adds a loss scaler)")},
                  {"resume", S::string().nullable().default_value(nullptr).doc("checkpoint to resume from")},
              })
                  .exactly_one_of({"epochs", "steps"});
    return S::object({
        {"task", S::string().required().one_of({"classification", "segmentation", "super_resolution", "sam_distill", "sam_finetune"})},
        {"model", model.required()},
        {"data", data.required()},
        {"optimizer", optimizer.required()},
        {"schedule", schedule},
        {"ema", ema},
        {"train", train.required()},
        {"output_dir", S::string().required().min_size(1)},
    });
  }();
  return schema;
}

}  // namespace evit::train
