// Helpers shared by the tests: closeness checks with useful failure output, golden-file access,
// and leaf construction for gradient checks.
#pragma once
#include <string>
#include <utility>

#include <catch2/catch.hpp>

#include "ops/gradcheck.h"
#include "core/safetensors.h"
#include "core/tensor.h"
#include "nn/module.h"

namespace evit::test {

// Largest |a - b| - (atol + rtol |b|) over all elements; <= 0 means close. Shapes must match.
struct CloseReport {
  bool ok = true;
  std::string detail;
};
CloseReport compare_close(const Tensor& actual, const Tensor& expected, double rtol, double atol);

// Fails the current test (with details) unless actual ~= expected.
#define EVIT_REQUIRE_CLOSE(actual, expected, rtol, atol)                                  \
  do {                                                                                     \
    auto _r = ::evit::test::compare_close((actual), (expected), (rtol), (atol));           \
    INFO(_r.detail);                                                                       \
    REQUIRE(_r.ok);                                                                        \
  } while (0)

// Runs the evit program (the build's own) through the shell with `args` (which may redirect or
// be prefixed by environment assignments in `env`); returns its exit status (-1 when a signal
// ended it) and its stdout + stderr.
std::pair<int, std::string> run_evit(const std::string& args, const std::string& env = "");

// Asserts bitwise equality (dtype, shape, bytes).
bool bitwise_equal(const Tensor& a, const Tensor& b);

// Golden tensors written by tools/golden/*.py: tests/golden/<family>.safetensors, keys
// "<case>.<name>". Fails the test with a message naming the generator if the file is missing.
const TensorMap& golden(const std::string& family);
Tensor golden_tensor(const std::string& family, const std::string& key);

// Runs the golden case "<case>" of `family`: inputs "<case>.x0", "x1", ... (those with a
// "<case>.grad<i>" entry become leaves requiring grad), compares fn(inputs) with "<case>.y" and
// the gradients of sum(y * w) (w = "<case>.w") with "<case>.grad<i>".
void check_golden_case(const std::string& family, const std::string& case_name,
                       const GradcheckFn& fn, double rtol = 1e-6, double atol = 1e-9);

// An f64 leaf that requires grad, from a tensor (copied, made contiguous unless told otherwise).
Tensor leaf(const Tensor& t);
// Random f64 leaf of a shape, values in [lo, hi).
Tensor random_leaf(const Shape& shape, double lo = -1.0, double hi = 1.0, uint64_t seed = 7);

// Runs gradcheck and fails the test with its message.
#define EVIT_REQUIRE_GRADCHECK(fn, inputs, ...)                                        \
  do {                                                                                  \
    auto _g = ::evit::gradcheck((fn), (inputs) __VA_OPT__(, ) __VA_ARGS__);             \
    INFO(_g.message);                                                                   \
    REQUIRE(_g.ok);                                                                     \
  } while (0)

// Runs gradcheck and fails the test with its message (a function, so a braced list of inputs
// can be passed directly: require_gradcheck(fn, {a, b})).
void require_gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                       const GradcheckOptions& options = {});
// A non-contiguous f64 leaf: a permuted view of random data of shape `base`, detached.
Tensor permuted_leaf(const Shape& base, const std::vector<int64_t>& order, uint64_t seed);
// Restores the thread count when a test ends (also on failure).
struct ThreadCountGuard {
  int saved;
  ThreadCountGuard();
  ~ThreadCountGuard();
};

// The shared sample-data folder (../shared/data next to the repository), or "" when absent.
std::string shared_data_dir();
// Reports the running test as skipped: prints "EVIT_TEST_SKIPPED: <reason>", which ctest counts
// as a skip (SKIP_REGULAR_EXPRESSION in CMakeLists.txt). The caller returns right after.
void skip(const std::string& reason);
// The message for tests that need the sample data: names the folder that is missing.
std::string no_shared_data(const std::string& what);

// ---- the deterministic parity machinery (the same fill in tools/reference/) ----
// Fills every state-dict tensor of `m` (except num_batches_tracked) from its full key:
// phi(K) = 2π·((Σ (i+1)·byte_i) mod 9973)/9973, s_j = sin(0.37 j + phi) in f64, then
// running_mean 0.05 s, running_var 1 + 0.25 (s+1), ≥2-D s/√(numel/shape[0]), other 1-D weight
// 1 + 0.1 s, bias 0.02 s; cast to f32.
void fill_deterministic(nn::Module& m);
// x_j = sin(0.013 j) over the flat index, f32.
Tensor sine_input(const Shape& shape);
// Σy, Σ|y| and the first values of a golden row.
struct Golden {
  double sum, abs_sum;
  std::vector<double> first;
};
// Σy and Σ|y| to 1e-4 relative to Σ|y|, the first values to 1e-4 relative (+2e-5 absolute).
void check_golden(const Tensor& y, const Golden& g);

}  // namespace evit::test
