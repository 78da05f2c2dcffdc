// The engine's large buffers (tapes, gate blocks, gradients: megabytes per layer, allocated at
// every call) come from this pool and go back to it when their last tensor dies.
//
// Why: malloc serves blocks this large with a fresh mmap and returns them to the system on
// free, so every page of every tape faulted on its first write, at every call: at batch 32,
// 2 × 512 units, 50 steps, an inference forward spent a fifth of its time in the kernel's
// page-fault handler. A block that comes back here keeps its pages (2 MB ones: the block is
// aligned to them and advised), so from the second call on nothing faults.
//
// Blocks are kept by size (rounded up to 2 MB, so nearby sizes share), at most kMaxCached bytes
// of free ones; beyond that a returned block is freed. `buffer_release` frees every free block.
#include <ATen/core/Tensor.h>
#include <ATen/ops/from_blob.h>
#include <torch/library.h>

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace rnnlab {
namespace {

constexpr std::size_t kPage = std::size_t(1) << 21;       // 2 MB
constexpr std::size_t kMaxCached = std::size_t(1) << 30;  // free bytes kept, at most

class Pool {
 public:
  void* take(std::size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= bytes;
        return p;
      }
    }
    void* p = std::aligned_alloc(kPage, bytes);
    if (p == nullptr) throw std::bad_alloc();
    madvise(p, bytes, MADV_HUGEPAGE);  // a hint: the kernel may decline
    return p;
  }

  void give(void* p, std::size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cached_ + bytes <= kMaxCached) {
        free_[bytes].push_back(p);
        cached_ += bytes;
        return;
      }
    }
    std::free(p);
  }

  std::int64_t release() {
    std::lock_guard<std::mutex> lock(mu_);
    const std::size_t freed = cached_;
    for (auto& [bytes, blocks] : free_)
      for (void* p : blocks) std::free(p);
    free_.clear();
    cached_ = 0;
    return std::int64_t(freed);
  }

  std::int64_t cached() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::int64_t(cached_);
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;
  std::size_t cached_ = 0;
};

// Never destroyed: a tensor may die after static destructors have run (at interpreter exit).
Pool& pool() {
  static Pool* p = new Pool;
  return *p;
}

at::Tensor buffer_empty(at::IntArrayRef size, at::ScalarType dtype) {
  std::int64_t n = 1;
  for (std::int64_t s : size) {
    TORCH_CHECK(s >= 0, "rnnlab buffer_empty: negative size");
    n *= s;
  }
  const std::size_t want = std::size_t(n) * c10::elementSize(dtype);
  const std::size_t bytes = std::max<std::size_t>(kPage, (want + kPage - 1) / kPage * kPage);
  void* p = pool().take(bytes);
  return at::from_blob(p, size, [bytes](void* q) { pool().give(q, bytes); },
                       at::TensorOptions().dtype(dtype));
}

std::int64_t buffer_release() { return pool().release(); }

std::int64_t buffer_cached() { return pool().cached(); }

}  // namespace
}  // namespace rnnlab

TORCH_LIBRARY_FRAGMENT(rnnlab, m) {
  m.def("buffer_empty(int[] size, ScalarType dtype) -> Tensor", &rnnlab::buffer_empty);
  m.def("buffer_release() -> int", &rnnlab::buffer_release);
  m.def("buffer_cached() -> int", &rnnlab::buffer_cached);
}
