// Scratch: a CPU kernel's temporary buffer (column matrices, regrouped planes, per-task padded
// planes). It comes from the CPU allocator that tensors use, so a large one is a block of the
// CPU block cache: a std::vector would zero it on every call and, above glibc's mmap threshold,
// map fresh pages each time (a page fault and a page clear per 4 KiB), which showed up as 4-5%
// of a training step. The contents start uninitialised: zero them where the kernel needs zeros.
#pragma once
#include <algorithm>
#include <cstddef>
#include <memory>

#include "core/storage.h"

namespace evit {

template <class T>
class Scratch {
 public:
  explicit Scratch(size_t n) : n_(n) {
    if (n > 0) block_ = Storage::allocate(n * sizeof(T), kCPU);
  }
  // n elements, each set to `fill`. Through a local pointer: a loop over data()[i] reloads the
  // block's pointer after every store (a T store might alias it), which GCC compiled into
  // scatter instructions, 10x slower than the plain vector stores of std::fill_n.
  Scratch(size_t n, T fill) : Scratch(n) { std::fill_n(data(), n, fill); }

  T* data() const { return block_ ? static_cast<T*>(block_->data()) : nullptr; }
  size_t size() const { return n_; }
  T& operator[](size_t i) const { return data()[i]; }
  T* begin() const { return data(); }
  T* end() const { return data() + n_; }

 private:
  size_t n_;
  std::shared_ptr<Storage> block_;
};

}  // namespace evit
