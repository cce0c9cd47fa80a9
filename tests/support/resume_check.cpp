#include "tests/support/resume_check.h"

#include <filesystem>

#include <catch2/catch.hpp>

#include "tests/support/test_util.h"
#include "train/trainer.h"

namespace evit::test {

void require_resume_bitwise(const std::function<nlohmann::json(const std::string&, int64_t)>& make_config,
                            const std::string& out, int64_t n) {
  std::filesystem::remove_all(out);
  train::Trainer straight(make_config(out + "/a", 2 * n));
  straight.train_steps(2 * n);
  {
    train::Trainer first(make_config(out + "/b", 2 * n));
    first.train_steps(n);
    first.save_checkpoint(out + "/b/checkpoint");
  }
  auto cfg = make_config(out + "/c", 2 * n);
  cfg["train"]["resume"] = out + "/b/checkpoint";
  train::Trainer resumed(cfg);
  REQUIRE(resumed.step() == n);
  resumed.train_steps(n);
  const auto a = straight.model().state_dict(), c = resumed.model().state_dict();
  REQUIRE(a.size() == c.size());
  for (const auto& [k, t] : a) {
    INFO(k);
    REQUIRE(bitwise_equal(t, c.at(k)));
  }
}

}  // namespace evit::test
