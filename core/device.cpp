#include "core/device.h"

namespace evit {

Device::Device(const std::string& spec) {
  if (spec == "cpu") {
    type = DeviceType::cpu;
    index = 0;
    return;
  }
  if (spec == "cuda") {
    type = DeviceType::cuda;
    index = 0;
    return;
  }
  if (spec.rfind("cuda:", 0) == 0 && spec.size() > 5) {
    size_t pos = 0;
    int i = -1;
    try {
      i = std::stoi(spec.substr(5), &pos);
    } catch (...) {
      pos = 0;
    }
    EVIT_CHECK(pos == spec.size() - 5 && i >= 0, "device: bad device string '", spec,
               "' (expected cpu, cuda or cuda:N)");
    type = DeviceType::cuda;
    index = i;
    return;
  }
  EVIT_THROW("device: bad device string '", spec, "' (expected cpu, cuda or cuda:N)");
}

}  // namespace evit
