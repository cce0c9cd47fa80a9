// Builds an EfficientViT from the installed evit, runs it and backpropagates through it.
#include <cstdio>

#include "ops/ops.h"
#include "zoo/models.h"

int main() {
  using namespace evit;
  auto model = zoo::create_model("efficientvit-b0");
  Tensor x = randn({1, 3, 64, 64});
  Tensor y = model->forward(x);
  sum(y).backward();
  std::printf("efficientvit-b0: output %s, %lld parameters\n", shape_str(y.sizes()).c_str(),
              (long long)model->num_parameters());
  return y.size(1) == 1000 ? 0 : 1;
}
