#include "core/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/copy.h"

namespace evit {
namespace {

using json = nlohmann::json;

// A header above this size is not a real checkpoint header; refusing it bounds memory use
// on malicious input.
constexpr uint64_t kMaxHeader = 100ull << 20;

const char* st_dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::i64: return "I64";
    case DType::i32: return "I32";
    case DType::u8: return "U8";
    case DType::boolean: return "BOOL";
    case DType::f16: return "F16";
    case DType::bf16: return "BF16";
  }
  return "?";
}

bool parse_st_dtype(const std::string& s, DType& out) {
  static const std::pair<const char*, DType> table[] = {
      {"F32", DType::f32}, {"F64", DType::f64}, {"I64", DType::i64},
      {"I32", DType::i32}, {"U8", DType::u8},   {"BOOL", DType::boolean},
      {"F16", DType::f16}, {"BF16", DType::bf16}};
  for (auto& [name, t] : table)
    if (s == name) {
      out = t;
      return true;
    }
  return false;
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

}  // namespace

TensorMap parse_safetensors(std::string_view bytes, const std::string& source, StringMap* metadata) {
  auto fail = [&](const std::string& what) -> void {
    EVIT_THROW("safetensors: ", source, ": ", what);
  };
  if (bytes.size() < 8) fail("file too short (" + std::to_string(bytes.size()) + " bytes) for the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  if (n > kMaxHeader) fail("header length " + std::to_string(n) + " exceeds the 100 MiB limit");
  if (n > bytes.size() - 8)
    fail("header length " + std::to_string(n) + " runs past the end of the file (" +
         std::to_string(bytes.size()) + " bytes)");
  std::string_view header = bytes.substr(8, n);
  const uint64_t data_size = bytes.size() - 8 - n;

  // Parse, rejecting duplicate top-level names (plain parsing would keep the last silently).
  std::set<std::string> top_keys;
  std::string duplicate;
  json j;
  try {
    j = json::parse(header.begin(), header.end(),
                    [&](int depth, json::parse_event_t ev, json& parsed) {
                      if (depth == 1 && ev == json::parse_event_t::key) {
                        std::string k = parsed.get<std::string>();
                        if (!top_keys.insert(k).second && duplicate.empty()) duplicate = k;
                      }
                      return true;
                    });
  } catch (const json::exception& e) {
    fail(std::string("header is not valid JSON: ") + e.what());
  }
  if (!duplicate.empty()) fail("duplicate tensor name '" + duplicate + "'");
  if (!j.is_object()) fail("header must be a JSON object");

  std::vector<Entry> entries;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail("__metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) fail("__metadata__ value '" + m.key() + "' is not a string");
        if (metadata) (*metadata)[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string& what) { fail("tensor '" + name + "': " + what); };
    if (!v.is_object()) bad("entry must be an object");
    for (auto f = v.begin(); f != v.end(); ++f)
      if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets")
        bad("unknown field '" + f.key() + "'");
    if (!v.contains("dtype") || !v["dtype"].is_string()) bad("missing or non-string dtype");
    Entry e;
    e.name = name;
    std::string dt = v["dtype"].get<std::string>();
    if (!parse_st_dtype(dt, e.dtype))
      bad("unsupported dtype '" + dt + "' (supported: F32, F64, F16, BF16, I64, I32, U8, BOOL)");
    if (!v.contains("shape") || !v["shape"].is_array()) bad("missing or non-array shape");
    uint64_t numel = 1;
    for (const json& d : v["shape"]) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0))
        bad("shape entries must be non-negative integers");
      uint64_t dv = d.get<uint64_t>();
      if (dv > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        bad("shape entry " + std::to_string(dv) + " exceeds the largest tensor dimension");
      if (dv != 0 && numel > std::numeric_limits<uint64_t>::max() / 8 / dv) bad("shape overflows");
      numel *= dv;
      e.shape.push_back(static_cast<int64_t>(dv));
    }
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() ||
        v["data_offsets"].size() != 2)
      bad("data_offsets must be a two-element array");
    for (const json& o : v["data_offsets"])
      if (!o.is_number_unsigned()) bad("data_offsets must be non-negative integers");
    e.begin = v["data_offsets"][0].get<uint64_t>();
    e.end = v["data_offsets"][1].get<uint64_t>();
    if (e.begin > e.end) bad("data_offsets begin > end");
    if (e.end > data_size)
      bad("data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
          ") exceed the data section of " + std::to_string(data_size) + " bytes");
    if (e.end - e.begin != numel * dtype_size(e.dtype))
      bad("data_offsets span " + std::to_string(e.end - e.begin) + " bytes but shape " +
          shape_str(e.shape) + " of " + dt + " needs " + std::to_string(numel * dtype_size(e.dtype)));
    entries.push_back(std::move(e));
  }

  // The ranges must tile the data section exactly: no overlaps, no holes.
  std::vector<const Entry*> by_offset;
  for (auto& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t pos = 0;
  for (const Entry* e : by_offset) {
    if (e->begin < pos) fail("tensor '" + e->name + "' overlaps the previous tensor's data");
    if (e->begin > pos) fail("gap in the data section before tensor '" + e->name + "'");
    pos = e->end;
  }
  if (pos != data_size)
    fail(std::to_string(data_size - pos) + " trailing bytes after the last tensor");

  TensorMap out;
  const char* data = bytes.data() + 8 + n;
  for (auto& e : entries) {
    Tensor t = from_blob(data + e.begin, e.shape, e.dtype);
    if (e.dtype == DType::boolean) {
      const uint8_t* p = static_cast<const uint8_t*>(t.raw_data());
      for (int64_t i = 0; i < t.numel(); ++i)
        if (p[i] > 1) fail("tensor '" + e.name + "': BOOL byte other than 0 or 1");
    }
    out.emplace(e.name, t);
  }
  return out;
}

TensorMap load_safetensors(const std::string& path, StringMap* metadata) {
  check_regular_file(path, "safetensors file");
  // Look at a large file's header before reading its body: a file that is not safetensors at all
  // (a multi-GB download of something else, say) fails without being read into memory. Small
  // files go straight to the parser, whose messages are more detailed.
  if (const auto size = static_cast<uint64_t>(std::filesystem::file_size(path)); size > (64u << 20)) {
    std::ifstream f(path, std::ios::binary);
    unsigned char prefix[9] = {};
    f.read(reinterpret_cast<char*>(prefix), 9);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | prefix[i];
    if (f.gcount() == 9 && (n > kMaxHeader || n > size - 8 || prefix[8] != '{'))
      EVIT_THROW("safetensors: ", path, ": not a safetensors file (its first 8 bytes give a header length of ", n,
                 " for a file of ", size, " bytes, or the header does not start with '{')");
  }
  return parse_safetensors(read_file(path), path, metadata);
}

std::string serialize_safetensors(const TensorMap& tensors, const StringMap& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (auto& [name, t] : tensors) {  // std::map: sorted by name
    EVIT_CHECK(name != "__metadata__", "safetensors: '__metadata__' is reserved");
    uint64_t nbytes = t.numel() * dtype_size(t.dtype());
    header[name] = {{"dtype", st_dtype_name(t.dtype())},
                    {"shape", t.sizes()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string h = header.dump();
  while (h.size() % 8 != 0) h.push_back(' ');
  std::string out(8, '\0');
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += h;
  out.reserve(out.size() + offset);
  for (auto& [name, t] : tensors) {
    Tensor c = t.detach().to(kCPU).contiguous();  // device tensors are written from a host copy
    out.append(static_cast<const char*>(c.raw_data()), c.numel() * dtype_size(c.dtype()));
  }
  return out;
}

void save_safetensors(const std::string& path, const TensorMap& tensors, const StringMap& metadata) {
  write_file_atomic(path, serialize_safetensors(tensors, metadata));
}

}  // namespace evit
