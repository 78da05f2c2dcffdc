// The engine's time loops, compiled: one forward and one backward per cell family. The
// specification is the Python cell (rnnlab/cells/*.py): same buffers, same layout, same
// equations; engine.py calls these in place of its per-step loop.
//
// Layout (as the Python tape): gate pre-activations xw (G, T, B, H), gate-major, overwritten
// with the activations; states (T + 1, B, size) with slot 0 the initial state. The batch is
// sorted longest first; batch_sizes[t] (or B when null) rows run at step t.
//
// Parallel over the batch: thread k of n owns rows k, k + n, k + 2n, ... for the whole loop,
// so the threads never wait for each other; its recurrent product is one strided matrix
// product per step.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "fastmath.h"
#include "gemm.h"

namespace rnnlab {

using i64 = int64_t;

// The rows of one thread: global row of local row r is first + r·stride.
struct Rows {
  i64 first, stride;
  i64 count(i64 running) const {  // of the rows [0, running), how many are this thread's
    return running > first ? (running - first + stride - 1) / stride : 0;
  }
  i64 row(i64 r) const { return first + r * stride; }
};

// Run f(rows) on up to `threads` threads, at least `min_rows` rows each.
template <typename F>
void for_rows(i64 B, int threads, i64 min_rows, F&& f) {
  const int nt = int(std::max<i64>(1, std::min<i64>(threads, B / std::max<i64>(1, min_rows))));
  if (nt == 1) {
    f(Rows{0, 1});
    return;
  }
#pragma omp parallel num_threads(nt)
  f(Rows{omp_get_thread_num(), nt});
}

inline i64 running(const i64* batch_sizes, i64 B, i64 t) {
  return batch_sizes ? batch_sizes[t] : B;
}

// Rows [ending, n) end at step t: their final-state gradient enters there.
inline i64 ending(const i64* batch_sizes, i64 T, i64 t) {
  return batch_sizes && t + 1 < T ? batch_sizes[t + 1] : 0;
}

// x ← σ(x); y ← tanh(x): a row's pointwise math, vectorised by the compiler
template <typename T>
inline void sigmoid_(T* __restrict x, i64 n) {
#pragma omp simd
  for (i64 j = 0; j < n; ++j) x[j] = fm::sigmoid(x[j]);
}

template <typename T>
inline void tanh_(const T* x, T* y, i64 n) {
#pragma omp simd
  for (i64 j = 0; j < n; ++j) y[j] = fm::tanh(x[j]);
}

}  // namespace rnnlab
