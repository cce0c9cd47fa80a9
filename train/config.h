// A small schema layer over nlohmann::json for training configs.
//
// A Schema describes one JSON value: its type, whether it may be null, default, allowed values,
// numeric bounds, string / array lengths, and for objects their fields (each optionally required)
// plus "exactly one of" / "at most one of" groups. Validation reports every problem as one line
// that starts with the JSON path:
//
//   config.optimizer.lr: expected number, got string
//   config.model.nmae: unknown key (did you mean 'name'?)
//   config.data: missing required field 'root'
//
// Command-line overrides "--set a.b.c=value" are parsed against the schema: the text is read as
// the type the schema declares for that path (bool, integer, number, string, array, object).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace evit::train {

using json = nlohmann::json;

enum class ValueType { Any, Bool, Integer, Number, String, Array, Object };

class Schema {
 public:
  Schema() = default;
  // ---- constructors for each type ----
  static Schema any() { return Schema(ValueType::Any); }
  static Schema boolean() { return Schema(ValueType::Bool); }
  static Schema integer() { return Schema(ValueType::Integer); }
  static Schema number() { return Schema(ValueType::Number); }
  static Schema string() { return Schema(ValueType::String); }
  static Schema array(Schema items) {
    Schema s(ValueType::Array);
    s.items_ = std::make_shared<Schema>(std::move(items));
    return s;
  }
  static Schema object(std::vector<std::pair<std::string, Schema>> fields) {
    Schema s(ValueType::Object);
    s.fields_ = std::move(fields);
    return s;
  }

  // ---- modifiers (return a copy, so declarations chain) ----
  Schema required() const { auto s = *this; s.required_ = true; return s; }
  Schema nullable() const { auto s = *this; s.nullable_ = true; return s; }
  Schema default_value(json v) const { auto s = *this; s.default_ = std::move(v); return s; }
  Schema one_of(std::vector<json> allowed) const { auto s = *this; s.allowed_ = std::move(allowed); return s; }
  Schema min(double v, bool exclusive = false) const { auto s = *this; s.min_ = v; s.min_excl_ = exclusive; return s; }
  Schema max(double v, bool exclusive = false) const { auto s = *this; s.max_ = v; s.max_excl_ = exclusive; return s; }
  // Array item count / string length bounds.
  Schema size(size_t lo, size_t hi) const { auto s = *this; s.min_size_ = lo; s.max_size_ = hi; return s; }
  Schema min_size(size_t lo) const { auto s = *this; s.min_size_ = lo; return s; }
  Schema doc(std::string d) const { auto s = *this; s.doc_ = std::move(d); return s; }
  // Object: exactly one of these fields must be present (and not null).
  Schema exactly_one_of(std::vector<std::string> keys) const { auto s = *this; s.exactly_one_.push_back(std::move(keys)); return s; }
  // Object: at most one of these fields may be present (and not null).
  Schema at_most_one_of(std::vector<std::string> keys) const { auto s = *this; s.at_most_one_.push_back(std::move(keys)); return s; }
  // Object: accept keys that are not declared (their values are not checked).
  Schema allow_unknown_keys() const { auto s = *this; s.allow_unknown_ = true; return s; }

  // ---- queries ----
  ValueType type() const { return type_; }
  bool is_required() const { return required_; }
  bool is_nullable() const { return nullable_; }
  const std::optional<json>& default_val() const { return default_; }
  const std::string& description() const { return doc_; }
  const std::vector<std::pair<std::string, Schema>>& fields() const { return fields_; }
  const Schema* field(const std::string& key) const;
  const Schema* items() const { return items_.get(); }
  bool allows_unknown_keys() const { return allow_unknown_; }

  // Every problem of `value`, one line each, paths starting at `path`. Empty: valid.
  std::vector<std::string> validate(const json& value, const std::string& path = "config") const;
  // A copy of `value` with the defaults of absent optional fields filled in (recursively, for
  // objects whose default is given or that are present), and integral numbers of integer fields
  // stored as integers. Call after validate() found no problem.
  json with_defaults(const json& value) const;

  // Reads `text` as a value of this schema's type (overrides): booleans true/false/yes/no/on/off/
  // 1/0, integers, numbers, strings (optionally quoted), arrays as JSON or comma-separated
  // items, objects as JSON; "null" for nullable fields. Throws evit::Error naming `path`.
  json parse_text(const std::string& text, const std::string& path) const;

 private:
  explicit Schema(ValueType t) : type_(t) {}
  void validate_into(const json& v, const std::string& path, std::vector<std::string>& out) const;

  ValueType type_ = ValueType::Any;
  bool required_ = false, nullable_ = false, allow_unknown_ = false;
  std::optional<json> default_;
  std::vector<json> allowed_;
  std::optional<double> min_, max_;
  bool min_excl_ = false, max_excl_ = false;
  std::optional<size_t> min_size_, max_size_;
  std::string doc_;
  std::vector<std::pair<std::string, Schema>> fields_;
  std::shared_ptr<Schema> items_;
  std::vector<std::vector<std::string>> exactly_one_, at_most_one_;
};

// "string", "integer", "number", "boolean", "null", "array", "object".
const char* json_type_name(const json& v);
// The closest candidate by edit distance when close enough to be a likely typo, else "".
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

// Applies one override "a.b.c=value" to `cfg` (creating intermediate objects), parsing the value
// against `schema`. An unknown key, a path through a non-object or an unparsable value throws a
// one-line evit::Error that starts with "--set <assignment>: ".
void apply_override(json& cfg, const Schema& schema, const std::string& assignment);

// Parses JSON text (errors name `source`, line and column), applies the overrides, validates
// (throwing the first problem, or all of them one per line with all_errors) and fills defaults.
json load_config_text(const std::string& text, const std::string& source, const Schema& schema,
                      const std::vector<std::string>& overrides = {}, bool all_errors = false);
json load_config_file(const std::string& path, const Schema& schema,
                      const std::vector<std::string>& overrides = {}, bool all_errors = false);

// The schema of an evit training config: task, model, data, optimizer, schedule, ema, train,
// output_dir. See the field docs in config.cpp (and `describe_schema`).
const Schema& training_config_schema();
// One line per field: "optimizer.lr  number (required) ..." — for --help style listings.
std::string describe_schema(const Schema& schema, const std::string& prefix = "");

}  // namespace evit::train
