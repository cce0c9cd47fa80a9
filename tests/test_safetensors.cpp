// safetensors: round trip, a file written by the Python side, and malformed files rejected.
#include <cstdio>
#include <filesystem>

#include "core/safetensors.h"
#include "ops/ops.h"
#include "tests/support/test_util.h"

using namespace evit;

namespace {
// A file with one tensor whose header is `json`, followed by `data_bytes` bytes of data.
std::string make_file(const std::string& json, size_t data_bytes) {
  std::string out(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + json + std::string(data_bytes, '\x01');
}
}  // namespace

TEST_CASE("safetensors round trip keeps names, dtypes, shapes, values and metadata", "[safetensors]") {
  TensorMap m;
  m["b.weight"] = randn({3, 4});
  m["a.f64"] = randn({2}, DType::f64);
  m["count"] = full({}, 7, DType::i64);
  m["ids"] = arange(5, DType::i32);
  m["bytes"] = full({2, 2}, 200, DType::u8);
  m["mask"] = gt(randn({5}), zeros({5}));
  m["strided"] = transpose(randn({2, 3}), 0, 1);  // written contiguous
  std::string path = (std::filesystem::temp_directory_path() / "evit_roundtrip.safetensors").string();
  save_safetensors(path, m, {{"format", "pt"}});
  REQUIRE_FALSE(std::filesystem::exists(path + ".tmp"));
  StringMap meta;
  TensorMap r = load_safetensors(path, &meta);
  REQUIRE(meta["format"] == "pt");
  REQUIRE(r.size() == m.size());
  for (auto& [k, t] : m) {
    INFO(k);
    REQUIRE(test::bitwise_equal(r.at(k), t.contiguous()));
  }
  std::string bytes = read_file(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  REQUIRE(n % 8 == 0);
  std::filesystem::remove(path);
}

TEST_CASE("safetensors reads files written by the Python side", "[safetensors]") {
  StringMap meta;
  const TensorMap& m = test::golden("pointwise");
  REQUIRE(m.size() > 50);
  load_safetensors(std::string(EVIT_GOLDEN_DIR) + "/pointwise.safetensors", &meta);
  REQUIRE(meta["family"] == "pointwise");
  REQUIRE(meta.count("torch") == 1);
  REQUIRE(m.at("relu.x0").dtype() == DType::f64);
  REQUIRE(m.at("compare.eq").dtype() == DType::boolean);
}

TEST_CASE("malformed safetensors files are rejected with clear errors", "[safetensors]") {
  const std::string ok_entry = R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  REQUIRE_NOTHROW(parse_safetensors(make_file(ok_entry, 8), "ok"));
  struct Bad {
    std::string what, bytes, message;
  };
  std::vector<Bad> bad = {
      {"too short", std::string(5, '\0'), "too short"},
      {"header past end", make_file(ok_entry, 8).substr(0, 20), "runs past the end"},
      {"huge header", std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}", "exceeds"},
      {"not json", make_file("{\"t\": [1,", 0), "not valid JSON"},
      {"not an object", make_file("[1,2]", 0), "must be a JSON object"},
      {"unknown dtype", make_file(R"({"t":{"dtype":"Q8","shape":[2],"data_offsets":[0,2]}})", 2),
       "unsupported dtype 'Q8'"},
      {"negative shape", make_file(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
       "non-negative"},
      {"offsets beyond data", make_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4),
       "exceed the data section"},
      {"size mismatch", make_file(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
       "needs 12"},
      {"overlap", make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
       "overlaps"},
      {"duplicate", make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                              R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
       "duplicate tensor name 'a'"},
      {"hole", make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8), "gap"},
      {"trailing bytes", make_file(ok_entry, 12), "trailing bytes"},
      {"begin after end", make_file(R"({"t":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8),
       "begin > end"},
      {"metadata not strings", make_file(R"({"__metadata__":{"a":1}})", 0), "not a string"},
      {"missing shape", make_file(R"({"t":{"dtype":"F32","data_offsets":[0,8]}})", 8), "shape"},
      {"unknown field", make_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", 8),
       "unknown field 'x'"},
      {"bad bool", make_file(R"({"t":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}})", 0) + "\x02",
       "BOOL byte"},
  };
  for (auto& b : bad) {
    INFO(b.what);
    REQUIRE_THROWS_WITH(parse_safetensors(b.bytes, "weights.safetensors"),
                        Catch::Contains("weights.safetensors") && Catch::Contains(b.message));
  }
}

TEST_CASE("loading a missing file names it", "[safetensors]") {
  REQUIRE_THROWS_WITH(load_safetensors("no/such/file.safetensors"),
                      Catch::Contains("no/such/file.safetensors"));
}
