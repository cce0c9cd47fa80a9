#include "nn/container.h"

namespace evit::nn {

Sequential::Sequential(std::vector<std::shared_ptr<Module>> mods) : Module("Sequential") {
  for (auto& m : mods) push_back(std::move(m));
}

void Sequential::push_back(std::shared_ptr<Module> m) {
  register_module(std::to_string(size()), std::move(m));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& [name, m] : named_children()) y = m->forward(y);
  return y;
}

ModuleList::ModuleList(std::vector<std::shared_ptr<Module>> mods) : Module("ModuleList") {
  for (auto& m : mods) push_back(std::move(m));
}

void ModuleList::push_back(std::shared_ptr<Module> m) {
  register_module(std::to_string(size()), std::move(m));
}

}  // namespace evit::nn
