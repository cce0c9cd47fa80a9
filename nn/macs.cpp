#include "nn/macs.h"

namespace evit::nn {
namespace {
thread_local MacCounter* t_active = nullptr;
}

MacCounter::MacCounter() : previous_(t_active) { t_active = this; }
MacCounter::~MacCounter() { t_active = previous_; }

void MacCounter::add(int64_t macs) {
  if (t_active) t_active->total_ += macs;
}

}  // namespace evit::nn
