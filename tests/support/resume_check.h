// The exact-resume check every task's trainer must pass: 2n steps straight give the same weights,
// bit for bit, as n steps, a checkpoint, a new Trainer resuming from it, and n more steps.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace evit::test {

// make_config(output_dir, total_steps) returns a validated training config; runs go to out/a,
// out/b (with its checkpoint in out/b/checkpoint) and out/c.
void require_resume_bitwise(const std::function<nlohmann::json(const std::string&, int64_t)>& make_config,
                            const std::string& out, int64_t n);

}  // namespace evit::test
