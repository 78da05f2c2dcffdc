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

// The weight gradients of a small layer, summed while each step's δa is still in cache. After
// the loop they would be products over the whole δa sequence, read back from memory once per
// weight and gate; for the 1997 experiments' nets (a few dozen units over 1,000 steps) those
// passes cost more than the loop. Each thread sums into its own accumulators (`FusedSum`),
// which `merge` adds into the outputs.
template <typename T>
struct Fused {
  i64 G, I, P;     // rows of the gate block, inputs, recurrent inputs
  const T* x;      // (T, B, I) the layer's input
  const T* W_ih;   // (G, I)
  T* dx;           // (T, B, I) ∂L/∂x, or null
  T* dW_ih;        // (G, I)    zero-filled by the caller
  T* db;           // (G)
  T* dW_hh;        // (G, P)    or null
};

template <typename T>
struct FusedSum {
  const Fused<T>& f;
  std::vector<T> ihT, hhT, b, W_ihT;  // (I, G), (P, G), (G); W_ihᵀ for dx
  explicit FusedSum(const Fused<T>& f_)
      : f(f_), ihT(f_.I * f_.G, T(0)), hhT(f_.dW_hh ? f_.P * f_.G : 0, T(0)), b(f_.G, T(0)),
        W_ihT(f_.dx ? f_.I * f_.G : 0) {
    for (i64 k = 0; k < (f.dx ? f.I : 0); ++k)
      for (i64 j = 0; j < f.G; ++j) W_ihT[k * f.G + j] = f.W_ih[j * f.I + k];
  }
  // n rows of step t: δa (n × G, ld G); their inputs x, h_{t−1} and ∂L/∂x at row stride
  void add(i64 n, const T* dA, const T* x, i64 sx, const T* h, i64 sh, T* dx, i64 sdx) {
    const i64 G = f.G;
    for (i64 r = 0; r < n; ++r) {
      const T* __restrict a = dA + r * G;
      T* __restrict bb = b.data();
#pragma omp simd
      for (i64 j = 0; j < G; ++j) bb[j] += a[j];
      for (i64 k = 0; k < f.I; ++k) {  // ∂L/∂W_ih += δa xᵀ
        const T v = x[r * sx + k];
        T* __restrict acc = ihT.data() + k * G;
#pragma omp simd
        for (i64 j = 0; j < G; ++j) acc[j] += a[j] * v;
      }
      if (f.dW_hh)
        for (i64 k = 0; k < f.P; ++k) {  // ∂L/∂W_hh += δa h_{t−1}ᵀ
          const T v = h[r * sh + k];
          T* __restrict acc = hhT.data() + k * G;
#pragma omp simd
          for (i64 j = 0; j < G; ++j) acc[j] += a[j] * v;
        }
      if (f.dx)
        for (i64 k = 0; k < f.I; ++k) {  // ∂L/∂x = W_ihᵀ δa
          const T* __restrict w = W_ihT.data() + k * G;
          T s = T(0);
#pragma omp simd reduction(+ : s)
          for (i64 j = 0; j < G; ++j) s += a[j] * w[j];
          dx[r * sdx + k] = s;
        }
    }
  }
  void merge() {  // called by every thread once: add this thread's sums to the outputs
#pragma omp critical(rnnlab_fused)
    {
      for (i64 j = 0; j < f.G; ++j) {
        f.db[j] += b[j];
        for (i64 k = 0; k < f.I; ++k) f.dW_ih[j * f.I + k] += ihT[k * f.G + j];
        if (f.dW_hh)
          for (i64 k = 0; k < f.P; ++k) f.dW_hh[j * f.P + k] += hhT[k * f.G + j];
      }
    }
  }
};

}  // namespace rnnlab
