#include "autograd/grad_mode.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace evit {
namespace {
thread_local bool t_grad_enabled = true;
std::atomic<bool> g_anomaly{[] {
  const char* e = std::getenv("EVIT_ANOMALY");
  return e != nullptr && std::strcmp(e, "0") != 0 && *e != '\0';
}()};
}  // namespace

bool GradMode::is_enabled() { return t_grad_enabled; }
void GradMode::set_enabled(bool on) { t_grad_enabled = on; }
bool anomaly_enabled() { return g_anomaly.load(); }
void set_anomaly_enabled(bool on) { g_anomaly.store(on); }

}  // namespace evit
