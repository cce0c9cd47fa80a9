// .npy reader. The header is a Python dict literal, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
// parsed here by a small recursive-descent reader that accepts exactly the literal forms numpy
// writes (strings, True/False, tuples of non-negative integers) and rejects everything else.
#include "data/npy.h"

#include <cctype>
#include <cstring>
#include <map>
#include <optional>

#include "core/error.h"
#include "core/safetensors.h"

namespace evit {

namespace {

struct HeaderValue {
  enum Kind { Str, Bool, Tuple } kind = Str;
  std::string str;
  bool boolean = false;
  std::vector<int64_t> tuple;
};

class HeaderParser {
 public:
  HeaderParser(std::string_view s, const std::string& source) : s_(s), source_(source) {}

  std::map<std::string, HeaderValue> parse_dict() {
    std::map<std::string, HeaderValue> out;
    expect('{');
    skip_ws();
    while (peek() != '}') {
      std::string key = parse_string();
      expect(':');
      HeaderValue v = parse_value();
      EVIT_CHECK(out.emplace(key, std::move(v)).second, "read_npy: '", source_,
                 "': duplicate header key '", key, "'");
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        skip_ws();
      } else {
        break;
      }
    }
    expect('}');
    skip_ws();
    EVIT_CHECK(pos_ == s_.size(), "read_npy: '", source_, "': trailing characters in header");
    return out;
  }

 private:
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_ws() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  [[noreturn]] void fail(const char* what) {
    EVIT_THROW("read_npy: '", source_, "': malformed header (", what, " at offset ", pos_,
               ") in ", std::string(s_));
  }
  void expect(char c) {
    skip_ws();
    if (peek() != c) fail((std::string("expected '") + c + "'").c_str());
    ++pos_;
  }
  std::string parse_string() {
    skip_ws();
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a string");
    ++pos_;
    size_t end = s_.find(q, pos_);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string out(s_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return out;
  }
  HeaderValue parse_value() {
    skip_ws();
    HeaderValue v;
    const char c = peek();
    if (c == '\'' || c == '"') {
      v.kind = HeaderValue::Str;
      v.str = parse_string();
    } else if (s_.substr(pos_, 4) == "True") {
      v.kind = HeaderValue::Bool, v.boolean = true, pos_ += 4;
    } else if (s_.substr(pos_, 5) == "False") {
      v.kind = HeaderValue::Bool, v.boolean = false, pos_ += 5;
    } else if (c == '(') {
      v.kind = HeaderValue::Tuple;
      ++pos_;
      skip_ws();
      while (peek() != ')') {
        if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("expected a dimension");
        int64_t d = 0;
        while (std::isdigit(static_cast<unsigned char>(peek()))) {
          if (d > (int64_t(1) << 50)) fail("dimension too large");
          d = d * 10 + (s_[pos_++] - '0');
        }
        v.tuple.push_back(d);
        skip_ws();
        if (peek() == ',') {
          ++pos_;
          skip_ws();
        } else if (peek() != ')') {
          fail("expected ',' or ')'");
        }
      }
      ++pos_;
    } else {
      fail("expected a string, True/False or a tuple");
    }
    return v;
  }

  std::string_view s_;
  const std::string& source_;
  size_t pos_ = 0;
};

uint32_t read_le(const unsigned char* p, int n) {
  uint32_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

Tensor parse_npy(std::string_view bytes, const std::string& source) {
  static const char kMagic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};
  EVIT_CHECK(bytes.size() >= 10 && std::memcmp(bytes.data(), kMagic, 6) == 0, "read_npy: '",
             source, "' is not a .npy file (bad magic)");
  const auto* u = reinterpret_cast<const unsigned char*>(bytes.data());
  const int major = u[6], minor = u[7];
  EVIT_CHECK((major == 1 || major == 2 || major == 3) && minor == 0, "read_npy: '", source,
             "': unsupported format version ", major, ".", minor);
  const int len_bytes = major == 1 ? 2 : 4;
  const size_t prefix = 8 + len_bytes;
  EVIT_CHECK(bytes.size() >= prefix, "read_npy: '", source, "': truncated header");
  const size_t header_len = read_le(u + 8, len_bytes);
  EVIT_CHECK(bytes.size() - prefix >= header_len, "read_npy: '", source, "': header length ",
             header_len, " exceeds the file size ", bytes.size());
  std::string_view header = bytes.substr(prefix, header_len);
  auto dict = HeaderParser(header, source).parse_dict();

  auto get = [&](const char* key, HeaderValue::Kind kind) -> const HeaderValue& {
    auto it = dict.find(key);
    EVIT_CHECK(it != dict.end(), "read_npy: '", source, "': header has no '", key, "' entry");
    EVIT_CHECK(it->second.kind == kind, "read_npy: '", source, "': header entry '", key,
               "' has the wrong type");
    return it->second;
  };
  const std::string& descr = get("descr", HeaderValue::Str).str;
  const bool fortran = get("fortran_order", HeaderValue::Bool).boolean;
  const std::vector<int64_t>& shape = get("shape", HeaderValue::Tuple).tuple;
  EVIT_CHECK(dict.size() == 3, "read_npy: '", source, "': unexpected extra header entries");
  EVIT_CHECK(!fortran, "read_npy: '", source,
             "': Fortran-order arrays are not supported (save with np.ascontiguousarray)");

  EVIT_CHECK(descr.size() >= 3, "read_npy: '", source, "': unsupported dtype '", descr, "'");
  const char order = descr[0];
  const std::string code = descr.substr(1);
  EVIT_CHECK(order != '>', "read_npy: '", source, "': big-endian dtype '", descr,
             "' is not supported (convert with arr.astype('<", code, "'))");
  DType dtype = DType::f32;
  bool ok_order = order == '<' || order == '|';
  if (code == "f4") dtype = DType::f32;
  else if (code == "f8") dtype = DType::f64;
  else if (code == "i8") dtype = DType::i64;
  else if (code == "i4") dtype = DType::i32;
  else if (code == "u1") dtype = DType::u8;
  else if (code == "b1") dtype = DType::boolean;
  else ok_order = false;
  // '|' (no byte order) is only meaningful for 1-byte types; '=' would mean the writer's native
  // order, which numpy never writes into a file.
  const bool one_byte = code == "u1" || code == "b1";
  EVIT_CHECK(ok_order && (order == '<' || one_byte), "read_npy: '", source,
             "': unsupported dtype '", descr, "' (supported: <f4 <f8 <i8 <i4 |u1 |b1)");

  int64_t numel = 1;
  for (int64_t d : shape) {
    EVIT_CHECK(d == 0 || numel <= (int64_t(1) << 40) / d, "read_npy: '", source, "': shape too large");
    numel *= d;
  }
  const size_t data_start = prefix + header_len;
  const size_t need = static_cast<size_t>(numel) * dtype_size(dtype);
  const size_t have = bytes.size() - data_start;
  EVIT_CHECK(have >= need, "read_npy: '", source, "': truncated data: shape needs ", need,
             " bytes, file has ", have);
  EVIT_CHECK(have == need, "read_npy: '", source, "': ", have - need,
             " unexpected bytes after the array data");
  Shape sizes(shape.begin(), shape.end());
  Tensor t = from_blob(bytes.data() + data_start, sizes, dtype);
  if (dtype == DType::boolean) {
    const uint8_t* p = static_cast<const uint8_t*>(t.raw_data());
    for (int64_t i = 0; i < numel; ++i)
      EVIT_CHECK(p[i] <= 1, "read_npy: '", source, "': bool element ", i, " has byte value ",
                 int(p[i]));
  }
  return t;
}

Tensor read_npy(const std::string& path) { return parse_npy(read_file(path), path); }

}  // namespace evit
