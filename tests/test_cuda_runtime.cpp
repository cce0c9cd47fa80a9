// The CUDA runtime and the pointwise family on the GPU ([cuda], hidden: run by
// tools/gpu_check.sh), plus the parts of the backend that need no GPU: 16-bit float
// conversions, autocast scopes, kernel-slot completeness and the errors without a GPU.
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>

#include "core/cuda.h"
#include "core/kernel_profile.h"
#include "core/generator.h"
#include "core/safetensors.h"
#include "ops/autocast.h"
#include "ops/ops.h"
#include "tests/support/cuda_compare.h"

using namespace evit;
using evit::test::cuda0;
using evit::test::random_f32;
using evit::test::require_cuda_matches_cpu;

namespace {
float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
}  // namespace

TEST_CASE("f16 conversion matches the compiler's _Float16 for every half and many floats", "[half]") {
  // Every half value converts to float and back to the same bits (NaNs stay NaN).
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = half_bits_to_float(static_cast<uint16_t>(h));
    _Float16 ref;
    uint16_t hb = static_cast<uint16_t>(h);
    std::memcpy(&ref, &hb, 2);
    if (std::isnan(f)) {
      REQUIRE(std::isnan(static_cast<float>(ref)));
      REQUIRE(std::isnan(half_bits_to_float(float_to_half_bits(f))));
      continue;
    }
    REQUIRE(f == static_cast<float>(ref));
    REQUIRE(float_to_half_bits(f) == hb);
  }
  // Floats between halves round to nearest even, like the compiler's conversion.
  Generator g(3);
  std::vector<float> cases = {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, -65520.0f, 1e-8f,
                              2.98e-8f, 5.96e-8f, 6.1e-5f, 1.0009765625f, 1.00048828125f,
                              std::numeric_limits<float>::infinity()};
  for (int i = 0; i < 200000; ++i) {
    auto w = Generator::philox(11, i);
    cases.push_back(bits_to_float(w[0]));
  }
  for (float f : cases) {
    if (std::isnan(f)) continue;
    _Float16 ref = static_cast<_Float16>(f);
    uint16_t rb;
    std::memcpy(&rb, &ref, 2);
    INFO("float bits " << std::hex << detail::float_bits(f));
    REQUIRE(float_to_half_bits(f) == rb);
  }
}

TEST_CASE("bf16 conversion rounds to nearest even and keeps NaN", "[half]") {
  REQUIRE(float_to_bf16_bits(1.0f) == 0x3f80);
  REQUIRE(float_to_bf16_bits(bits_to_float(0x3f808000u)) == 0x3f80);  // tie -> even
  REQUIRE(float_to_bf16_bits(bits_to_float(0x3f818000u)) == 0x3f82);  // tie -> even (up)
  REQUIRE(float_to_bf16_bits(bits_to_float(0x3f808001u)) == 0x3f81);  // above the tie
  REQUIRE(float_to_bf16_bits(bits_to_float(0x7f7fffffu)) == 0x7f80);  // max float -> inf
  REQUIRE(std::isnan(bf16_bits_to_float(float_to_bf16_bits(std::nanf("")))));
  REQUIRE(bf16_bits_to_float(0xc040) == -3.0f);
}

TEST_CASE("f16 and bf16 tensors convert, copy and round-trip through safetensors on the CPU", "[half]") {
  Tensor x = from_vector<float>({1.0f, -2.5f, 3.14159f, 70000.0f, 1e-6f}, {5});
  Tensor h = x.to(DType::f16);
  REQUIRE(h.dtype() == DType::f16);
  std::vector<float> back = h.to(DType::f32).to_vector<float>();
  REQUIRE(back[0] == 1.0f);
  REQUIRE(back[1] == -2.5f);
  REQUIRE(back[2] == 3.140625f);  // nearest half
  REQUIRE(std::isinf(back[3]));
  REQUIRE(back[4] == half_bits_to_float(float_to_half_bits(1e-6f)));
  Tensor b = x.to(DType::bf16);
  REQUIRE(b.to(DType::f32).to_vector<float>()[2] == 3.140625f);
  REQUIRE(h.to(DType::bf16).to(DType::f32).to_vector<float>()[1] == -2.5f);
  REQUIRE(zeros({3}, DType::f16).to(DType::f32).to_vector<float>() == std::vector<float>{0, 0, 0});
  REQUIRE_THROWS_WITH(full({2}, 0.5, DType::bf16).item<float>(), Catch::Contains("2 elements"));
  REQUIRE(full({1}, 0.5, DType::bf16).item<float>() == 0.5f);
  // CPU kernels compute in f32/f64 only and say how to get there.
  REQUIRE_THROWS_WITH(relu(h), Catch::Contains("to(f32)"));

  std::string path = "half_roundtrip.safetensors";
  save_safetensors(path, {{"h", h}, {"b", b}});
  TensorMap m = load_safetensors(path);
  REQUIRE(m.at("h").dtype() == DType::f16);
  REQUIRE(test::bitwise_equal(m.at("h"), h));
  REQUIRE(test::bitwise_equal(m.at("b"), b));
  std::remove(path.c_str());
}

TEST_CASE("autocast scopes nest, affect only CUDA devices and refuse non-16-bit types", "[autocast]") {
  REQUIRE_FALSE(autocast_dtype(cuda0()).has_value());
  {
    AutocastGuard on(DType::bf16);
    REQUIRE(autocast_dtype(cuda0()) == DType::bf16);
    REQUIRE_FALSE(autocast_dtype(kCPU).has_value());
    {
      AutocastGuard off(DType::f16, false);
      REQUIRE_FALSE(autocast_dtype(cuda0()).has_value());
    }
    REQUIRE(autocast_dtype(cuda0()) == DType::bf16);
  }
  REQUIRE_FALSE(autocast_dtype(cuda0()).has_value());
  REQUIRE_THROWS_WITH(AutocastGuard(DType::f64), Catch::Contains("f16 or bf16"));
  Tensor x = random_f32({3});
  REQUIRE(autocast_operand(x, std::nullopt).is_same(x));
  Tensor xh = autocast_operand(x, DType::f16);
  REQUIRE(xh.dtype() == DType::f16);
  xh.to(DType::f32).backward(ones({3}));
  REQUIRE(x.grad().to_vector<float>() == std::vector<float>{1, 1, 1});
}

TEST_CASE("without a GPU, asking for a CUDA tensor is a clear error", "[cuda_backend]") {
  if (cuda::is_available()) {
    SUCCEED("a GPU is visible; the [cuda] tests cover this build");
    return;
  }
  REQUIRE(cuda::device_count() == 0);
  if (cuda::is_built()) {
    REQUIRE_THROWS_WITH(zeros({2}, {DType::f32, cuda0()}), Catch::Contains("no CUDA GPU is visible"));
  } else {
    REQUIRE_THROWS_WITH(zeros({2}, {DType::f32, cuda0()}), Catch::Contains("EVIT_CUDA=ON"));
    REQUIRE_THROWS_WITH(cuda::memory_stats(0), Catch::Contains("no CUDA backend"));
  }
  REQUIRE_THROWS_WITH(random_f32({2}).to(cuda0()), Catch::Contains("cuda:0"));
}

TEST_CASE("a CUDA build fills every declared CUDA kernel slot", "[cuda_backend]") {
  const auto& slots = cuda_kernel_slots();
  REQUIRE(slots.size() >= 8);  // the runtime's own slots at least
  for (const auto* s : slots) {
    if (std::string(s->name()).rfind("test_", 0) == 0) continue;  // slots the tests make and fill
    INFO("CUDA kernel slot " << s->name());
    CHECK(s->filled() == cuda::is_built());
  }
}

TEST_CASE("the kernel profile times outermost slot calls only while it records", "[cuda_backend]") {
  using Sleep = CudaKernelSlot<void(int)>;
  static Sleep inner("test_profile_inner");
  static Sleep outer("test_profile_outer");
  inner.fill([](int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); });
  outer.fill([](int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    inner(ms);  // nested: charged to outer, not counted as a call of inner
  });
  outer(1);  // before start(): not recorded
  kernel_profile::start();
  outer(2);
  outer(2);
  inner(3);
  const auto entries = kernel_profile::stop();
  outer(1);  // after stop(): not recorded
  REQUIRE(kernel_profile::stop().size() == entries.size());

  REQUIRE(entries.size() == 2);
  REQUIRE(entries[0].total_ms >= entries[1].total_ms);
  auto find = [&](const std::string& name) {
    for (const auto& e : entries)
      if (e.slot == name) return e;
    FAIL("no profile entry for " << name);
    return kernel_profile::Entry{};
  };
  const auto o = find("test_profile_outer"), i = find("test_profile_inner");
  CHECK(o.calls == 2);
  CHECK(o.total_ms >= 8.0);  // each call sleeps 2 ms itself and 2 ms in the nested inner call
  CHECK(i.calls == 1);
  CHECK(i.total_ms >= 3.0);
}

// ------------------------------------------------------------------ GPU only

TEST_CASE("CUDA copies: host/device round trips with strides, dtypes and broadcast", "[.][cuda]") {
  EVIT_REQUIRE_GPU();
  Tensor x = random_f32({4, 6, 5}, false);
  Tensor d = x.to(cuda0());
  REQUIRE(d.device() == cuda0());
  REQUIRE(test::bitwise_equal(d.to(kCPU), x));
  Tensor xp = permute(x, {2, 0, 1});
  REQUIRE(test::bitwise_equal(permute(d, {2, 0, 1}).to(kCPU), xp.contiguous()));
  REQUIRE(test::bitwise_equal(permute(d, {2, 0, 1}).contiguous().to(kCPU), xp.contiguous()));
  REQUIRE(test::bitwise_equal(xp.to(cuda0()).to(kCPU), xp.contiguous()));
  // dtype conversions on the device equal those on the host
  for (DType t : {DType::f64, DType::f16, DType::bf16, DType::i32, DType::i64, DType::u8, DType::boolean}) {
    INFO(dtype_name(t));
    Tensor scaled = mul(x, 100.0);
    REQUIRE(test::bitwise_equal(scaled.to(cuda0()).to(t).to(kCPU), scaled.to(t)));
  }
  // broadcast copy into a strided destination
  Tensor dst = zeros({5, 4}, {DType::f32, cuda0()});
  Tensor row = random_f32({4}, false);
  Tensor dst_t = transpose(dst, 0, 1);  // [4,5] view
  copy_(dst_t, unsqueeze(row, 1).to(cuda0()));
  REQUIRE(test::bitwise_equal(dst.to(kCPU), expand(unsqueeze(row, 0), {5, 4}).contiguous()));
  // fills, factories, item
  REQUIRE(full({3}, 2.5, {DType::f32, cuda0()}).to(kCPU).to_vector<float>() == std::vector<float>{2.5f, 2.5f, 2.5f});
  Generator g1(9), g2(9);
  REQUIRE(test::bitwise_equal(randn({7}, {DType::f32, cuda0()}, &g1).to(kCPU), randn({7}, DType::f32, &g2)));
  REQUIRE(full({1}, 4.0, {DType::f32, cuda0()}).item<float>() == 4.0f);
  Tensor pinned = cuda::pin_memory(x);
  REQUIRE(test::bitwise_equal(pinned.to(cuda0()).to(kCPU), x));
  cuda::synchronize();
  REQUIRE(cuda::memory_stats(0).allocated_bytes > 0);
}

TEST_CASE("CUDA errors name the op and devices", "[.][cuda]") {
  EVIT_REQUIRE_GPU();
  Tensor a = random_f32({3}, false).to(cuda0());
  Tensor b = random_f32({3}, false);
  REQUIRE_THROWS_WITH(add(a, b), Catch::Contains("same device"));
  REQUIRE_THROWS_WITH(zeros({2}, {DType::f32, Device(DeviceType::cuda, 99)}), Catch::Contains("cuda:99"));
}

TEST_CASE("CUDA pointwise ops match the CPU (outputs and gradients)", "[.][cuda]") {
  EVIT_REQUIRE_GPU();
  using Fn = Tensor (*)(const Tensor&);
  const std::pair<const char*, Fn> unary[] = {
      {"relu", relu}, {"relu6", relu6}, {"hardswish", hardswish}, {"gelu", gelu},
      {"gelu_tanh", gelu_tanh}, {"silu", silu}, {"sigmoid", sigmoid}, {"tanh", evit::tanh},
      {"exp", evit::exp}, {"abs", evit::abs}, {"neg", neg}};
  for (auto& [name, fn] : unary) {
    INFO(name);
    Tensor x = random_f32({3, 7, 9}, true, -8.0, 8.0);
    require_cuda_matches_cpu([fn = fn](const std::vector<Tensor>& in) { return fn(in[0]); }, {x});
  }
  Tensor pos = random_f32({5, 6}, true, 0.1, 4.0);
  require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return evit::log(in[0]); }, {pos});
  require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return evit::sqrt(in[0]); }, {pos});
  require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return rsqrt(in[0]); }, {pos});
  require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return evit::pow(in[0], 2.5); }, {pos});
  require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return clamp(in[0], -0.3, 0.4); },
                           {random_f32({40})});
  // binaries with broadcasting and a non-contiguous operand
  Tensor a = random_f32({4, 1, 6});
  Tensor b = random_f32({5, 6}, true, 0.5, 2.0, 8);
  for (int k = 0; k < 6; ++k) {
    INFO("binary " << k);
    require_cuda_matches_cpu(
        [k](const std::vector<Tensor>& in) {
          Tensor bt = transpose(transpose(in[1], 0, 1).contiguous(), 0, 1);  // strided view
          switch (k) {
            case 0: return add(in[0], bt);
            case 1: return sub(in[0], bt);
            case 2: return mul(in[0], bt);
            case 3: return div(in[0], bt);
            case 4: return maximum(in[0], bt);
            default: return minimum(in[0], bt);
          }
        },
        {a, b});
  }
  require_cuda_matches_cpu([](const std::vector<Tensor>& in) { return lt(in[0], in[1]); },
                           {random_f32({4, 5}, false), random_f32({5}, false, -1, 1, 9)});
  require_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return where(gt(in[0], 0.0), in[0], in[1]); },
      {random_f32({4, 5}), random_f32({4, 5}, true, -1, 1, 3)});
  // in-place updates (optimizer style)
  Tensor p = random_f32({10}, false);
  Tensor q = random_f32({10}, false, -1, 1, 4);
  Tensor pd = p.to(cuda0()), qd = q.to(cuda0());
  add_(p, q, -0.5);
  add_(pd, qd, -0.5);
  mul_(p, 0.9);
  mul_(pd, 0.9);
  EVIT_REQUIRE_CLOSE(pd.to(kCPU), p, 1e-6, 1e-7);
}
