// Gathers per-item results computed on different ranks into one list in item order, identical on
// every rank: the variable-length counterpart of summing exact counts.
//
// A sharded evaluation gives item i (an image) to one rank; each item yields any number of values
// (one per annotated instance, say). Every rank passes the same number of items, filling only
// those it owns and leaving the others empty; ordered_gather returns the concatenation
// items[0] ++ items[1] ++ ... on every rank. Built on tree_allreduce_sum: the lengths are summed
// as integers, then each value is added to zeros from the other ranks, which changes no bit, so
// the result is the same as one process filling every item itself.
#pragma once
#include <vector>

#include "core/dist/communicator.h"

namespace evit::dist {

// `items[i]` must be empty on every rank but the one that computed item i.
std::vector<double> ordered_gather(Communicator& comm, const std::vector<std::vector<double>>& items);

}  // namespace evit::dist
