#include <cstdio>
#include "tests/support/test_util.h"

#include <sys/wait.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <sstream>

#include "core/generator.h"
#include "ops/pointwise.h"
#include "ops/reduce.h"
#include "ops/shape.h"
#include "core/parallel.h"

namespace evit::test {

CloseReport compare_close(const Tensor& actual, const Tensor& expected, double rtol, double atol) {
  CloseReport r;
  std::ostringstream os;
  if (actual.sizes() != expected.sizes()) {
    r.ok = false;
    os << "shape mismatch: actual " << actual.desc() << " vs expected " << expected.desc();
    r.detail = os.str();
    return r;
  }
  std::vector<double> a = actual.detach().to_vector<double>();
  std::vector<double> b = expected.detach().to_vector<double>();
  double worst = -1e300, max_abs = 0;
  int64_t worst_i = -1, bad = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double err = std::abs(a[i] - b[i]);
    double excess = err - (atol + rtol * std::abs(b[i]));
    if (std::isnan(a[i]) != std::isnan(b[i])) excess = 1e300;
    if (excess > 0) ++bad;
    if (excess > worst) {
      worst = excess;
      worst_i = static_cast<int64_t>(i);
    }
    max_abs = std::max(max_abs, err);
  }
  r.ok = bad == 0;
  os << actual.desc() << ": " << bad << " of " << a.size() << " elements outside rtol " << rtol
     << " atol " << atol << "; max abs error " << max_abs;
  if (worst_i >= 0)
    os << "; worst at flat index " << worst_i << ": actual " << a[worst_i] << " expected "
       << b[worst_i];
  r.detail = os.str();
  return r;
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.sizes() != b.sizes()) return false;
  Tensor x = a.detach().contiguous(), y = b.detach().contiguous();
  return std::memcmp(x.raw_data(), y.raw_data(), x.numel() * dtype_size(x.dtype())) == 0;
}

const TensorMap& golden(const std::string& family) {
  static std::mutex mu;
  static std::map<std::string, TensorMap> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(family);
  if (it != cache.end()) return it->second;
  std::string path = std::string(EVIT_GOLDEN_DIR) + "/" + family + ".safetensors";
  if (!std::filesystem::exists(path))
    FAIL("golden file " << path << " is missing; regenerate it with "
                        << "/usr/bin/python3 tools/golden/gen_" << family << ".py");
  return cache.emplace(family, load_safetensors(path)).first->second;
}

Tensor golden_tensor(const std::string& family, const std::string& key) {
  const TensorMap& m = golden(family);
  auto it = m.find(key);
  if (it == m.end()) FAIL("golden file " << family << " has no tensor '" << key << "'");
  return it->second;
}

void check_golden_case(const std::string& family, const std::string& c, const GradcheckFn& fn,
                       double rtol, double atol) {
  const TensorMap& m = golden(family);
  std::vector<Tensor> inputs;
  for (int i = 0;; ++i) {
    auto it = m.find(c + ".x" + std::to_string(i));
    if (it == m.end()) break;
    Tensor x = it->second;
    if (m.count(c + ".grad" + std::to_string(i))) {
      x = x.detach().clone().detach();  // a private leaf in the golden dtype
      x.requires_grad_(true);
    }
    inputs.push_back(x);
  }
  INFO("golden case " << family << "/" << c);
  REQUIRE(!inputs.empty());
  Tensor y = fn(inputs);
  Tensor expected_y = golden_tensor(family, c + ".y");
  {
    INFO("forward output");
    EVIT_REQUIRE_CLOSE(y, expected_y.to(y.dtype()), rtol, atol);
  }
  if (!y.requires_grad()) return;
  Tensor w = golden_tensor(family, c + ".w").to(y.dtype());
  sum(mul(y, w)).backward();
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto it = m.find(c + ".grad" + std::to_string(i));
    if (it == m.end()) continue;
    INFO("gradient of input " << i);
    REQUIRE(inputs[i].grad().defined());
    EVIT_REQUIRE_CLOSE(inputs[i].grad(), it->second.to(inputs[i].dtype()), rtol, atol);
  }
}

Tensor leaf(const Tensor& t) {
  Tensor c = t.detach().to(DType::f64).contiguous().clone().detach();
  c.requires_grad_(true);
  return c;
}

Tensor random_leaf(const Shape& shape, double lo, double hi, uint64_t seed) {
  Generator g(seed);
  Tensor t = uniform(shape, lo, hi, {DType::f64}, &g);
  t.requires_grad_(true);
  return t;
}

void require_gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs, const GradcheckOptions& options) {
  auto r = gradcheck(fn, inputs, options);
  INFO(r.message);
  REQUIRE(r.ok);
}

Tensor permuted_leaf(const Shape& base, const std::vector<int64_t>& order, uint64_t seed) {
  Tensor t = permute(random_leaf(base, -1.0, 1.0, seed), order).detach();
  REQUIRE_FALSE(t.is_contiguous());
  t.requires_grad_(true);
  return t;
}

ThreadCountGuard::ThreadCountGuard() : saved(get_num_threads()) {}
ThreadCountGuard::~ThreadCountGuard() { set_num_threads(saved); }

std::string shared_data_dir() {
  std::filesystem::path p(EVIT_SHARED_DATA_DIR);
  return std::filesystem::is_directory(p) ? std::filesystem::canonical(p).string() : "";
}

void skip(const std::string& reason) {
  std::printf("EVIT_TEST_SKIPPED: %s\n", reason.c_str());
  std::fflush(stdout);
}

std::string no_shared_data(const std::string& what) {
  return what + " skipped: the sample-data folder " + std::string(EVIT_SHARED_DATA_DIR) +
         " (../shared/data beside the repository) is absent";
}

void fill_deterministic(nn::Module& m) {
  TensorMap sd = m.state_dict();
  TensorMap filled;
  for (auto& [key, t] : sd) {
    if (key.size() >= 19 && key.compare(key.size() - 19, 19, "num_batches_tracked") == 0) continue;
    uint64_t acc = 0;
    for (size_t i = 0; i < key.size(); ++i) acc += (i + 1) * static_cast<unsigned char>(key[i]);
    const double phi = 2 * M_PI * static_cast<double>(acc % 9973) / 9973.0;
    const int64_t n = t.numel();
    std::vector<double> v(n);
    auto ends_with = [&](const std::string& s) {
      return key.size() >= s.size() && key.compare(key.size() - s.size(), s.size(), s) == 0;
    };
    for (int64_t j = 0; j < n; ++j) {
      double s = std::sin(0.37 * static_cast<double>(j) + phi);
      if (ends_with("running_mean")) v[j] = 0.05 * s;
      else if (ends_with("running_var")) v[j] = 1 + 0.25 * (s + 1);
      else if (t.dim() >= 2) v[j] = s / std::sqrt(static_cast<double>(n) / static_cast<double>(t.size(0)));
      else if (ends_with("weight")) v[j] = 1 + 0.1 * s;
      else if (ends_with("bias")) v[j] = 0.02 * s;
      else v[j] = s;
    }
    filled[key] = from_vector<double>(v, t.sizes()).to(DType::f32);
  }
  for (auto& [key, t] : sd)
    if (!filled.count(key)) filled[key] = t;
  m.load_state_dict(filled);
}

Tensor sine_input(const Shape& shape) {
  int64_t n = shape_numel(shape);
  std::vector<double> v(n);
  for (int64_t j = 0; j < n; ++j) v[j] = std::sin(0.013 * static_cast<double>(j));
  return from_vector<double>(v, shape).to(DType::f32);
}

void check_golden(const Tensor& y, const Golden& g) {
  std::vector<double> v = y.to_vector<double>();
  double s = 0, a = 0;
  for (double x : v) s += x, a += std::abs(x);
  INFO("sum " << s << " (expected " << g.sum << "), abs sum " << a << " (expected " << g.abs_sum << ")");
  // Σy can be a small difference of large terms: compare it relative to Σ|y|.
  REQUIRE(std::abs(s - g.sum) <= 1e-4 * std::abs(g.abs_sum));
  REQUIRE(std::abs(a - g.abs_sum) <= 1e-4 * std::abs(g.abs_sum));
  for (size_t i = 0; i < g.first.size(); ++i) {
    INFO("y[" << i << "] = " << v[i] << ", expected " << g.first[i]);
    REQUIRE(std::abs(v[i] - g.first[i]) <= 1e-4 * std::max(1.0, std::abs(g.first[i])) + 2e-5);
  }
}

std::pair<int, std::string> run_evit(const std::string& args, const std::string& env) {
  const std::string cmd = env + (env.empty() ? "" : " ") + "'" + std::string(EVIT_CLI) + "' " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace evit::test
