#include "core/dist/ordered_gather.h"

#include <algorithm>
#include <span>

#include "core/dist/tree_reduce.h"
#include "core/error.h"

namespace evit::dist {

std::vector<double> ordered_gather(Communicator& comm, const std::vector<std::vector<double>>& items) {
  std::vector<int64_t> lengths(items.size());
  for (size_t i = 0; i < items.size(); ++i) lengths[i] = static_cast<int64_t>(items[i].size());
  if (comm.size() > 1) {
    // Every item has one owner, so a sum of non-zero lengths means two ranks claimed an item.
    std::vector<int64_t> owners(items.size());
    for (size_t i = 0; i < items.size(); ++i) owners[i] = items[i].empty() ? 0 : 1;
    std::vector<int64_t> counts = lengths;
    counts.insert(counts.end(), owners.begin(), owners.end());
    tree_allreduce_sum(comm, std::span<int64_t>(counts));
    for (size_t i = 0; i < items.size(); ++i)
      EVIT_CHECK(counts[items.size() + i] <= 1, "ordered_gather: item ", i, " was computed on ",
                 counts[items.size() + i], " ranks (each item needs one owner)");
    std::copy(counts.begin(), counts.begin() + static_cast<std::ptrdiff_t>(items.size()), lengths.begin());
  }
  std::vector<double> out;
  int64_t total = 0;
  for (int64_t n : lengths) total += n;
  out.reserve(static_cast<size_t>(total));
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].empty()) out.insert(out.end(), items[i].begin(), items[i].end());
    else out.resize(out.size() + static_cast<size_t>(lengths[i]), 0.0);
  }
  if (comm.size() > 1) tree_allreduce_sum(comm, std::span<double>(out));
  return out;
}

}  // namespace evit::dist
