#include "core/dist/tree_in_flight.h"

#include "core/dist/tree_reduce.h"
#include "core/error.h"

namespace evit::dist {

TreeAllreduceInFlight::TreeAllreduceInFlight(Communicator& comm) : comm_(comm) {
  EVIT_CHECK(is_power_of_two(comm.size()), "tree all-reduce: the job has ", comm.size(),
             " ranks; the fixed summation tree needs a power of two (1, 2, 4, 8, ...)");
}

// The exchange in flight reads and writes queue_.front() and received_: it ends before they do.
TreeAllreduceInFlight::~TreeAllreduceInFlight() { in_flight_.reset(); }

void TreeAllreduceInFlight::push(const Tensor& piece) {
  EVIT_CHECK(piece.device().is_cpu() && piece.is_contiguous() && piece.dim() == 1,
             "tree all-reduce in flight: a contiguous 1-D CPU tensor expected, got ", piece.desc());
  if (comm_.size() == 1) return;
  queue_.push_back(piece);
  advance(false);
}

void TreeAllreduceInFlight::poll() { advance(false); }

void TreeAllreduceInFlight::wait() { advance(true); }

void TreeAllreduceInFlight::advance(bool block) {
  while (!queue_.empty()) {
    const Tensor& piece = queue_.front();
    if (!in_flight_) {
      if (!received_.defined() || received_.numel() < piece.numel() || received_.dtype() != piece.dtype())
        received_ = empty({piece.numel()}, piece.dtype());
      in_flight_ = comm_.start_exchange(comm_.rank() ^ distance_, piece.raw_data(), received_.raw_data(),
                                        piece.nbytes());
    }
    if (block) in_flight_->wait();
    else if (!in_flight_->test()) return;
    in_flight_.reset();
    add_into(piece, make_view(received_, piece.sizes(), {1}, received_.storage_offset()));
    distance_ *= 2;
    if (distance_ >= comm_.size()) {
      queue_.pop_front();
      distance_ = 1;
    }
  }
}

}  // namespace evit::dist
