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

// Zoneout on one state (Krueger et al. 2017; rnnlab/options.py): s_t = z s_{t−1} + (1 − z) s̃_t,
// s̃_t the cell's own new state, kept in `cand` for the backward pass. z is (T, B, n), 1 where a
// unit keeps its value (training), or one row for every step and sequence (evaluation): a zero
// stride then.
template <typename T>
struct Zone {
  const T* z = nullptr;
  i64 st = 0, sb = 0;  // z's step and row strides
  T* cand = nullptr;   // (T, B, n)
  i64 B = 0, n = 0;
  bool on() const { return z != nullptr; }
  const T* at(i64 t, i64 b) const { return z + t * st + b * sb; }
  T* cand_at(i64 t, i64 b) const { return cand + (t * B + b) * n; }
  // forward, row b of step t: s holds s̃_t; keep it, then mix (torch.lerp's formula, exact
  // at z = 0 and 1)
  void mix(i64 t, i64 b, const T* __restrict prev, T* __restrict s) const {
    const T* __restrict zz = at(t, b);
    T* __restrict c = cand_at(t, b);
#pragma omp simd
    for (i64 j = 0; j < n; ++j) {
      const T w = zz[j], new_ = s[j];
      c[j] = new_;
      s[j] = w < T(0.5) ? new_ + w * (prev[j] - new_) : prev[j] - (prev[j] - new_) * (T(1) - w);
    }
  }
  // backward, before the cell's step: δs_t reaches s_{t−1} as z δs_t (kept) and s̃_t as
  // (1 − z) δs_t (left in ds)
  void split(i64 t, i64 b, T* __restrict ds, T* __restrict kept) const {
    const T* __restrict zz = at(t, b);
#pragma omp simd
    for (i64 j = 0; j < n; ++j) {
      kept[j] = zz[j] * ds[j];
      ds[j] -= ds[j] * zz[j];
    }
  }
};

// What recurrent dropout and zoneout put into a loop (rnnlab.cells.base.Masks).
template <typename T>
struct Masks {
  const T* drop = nullptr;  // (B, P): h_{t−1} ⊙ drop enters the recurrent product
  Zone<T> zone[2];          // h, then c
};

// The rows of one thread's h_{t−1} as the recurrent product sees them: with recurrent dropout
// a masked copy (n × P, ld P) in `scratch`; else the state buffer itself (ld s·P).
template <typename T>
inline const T* product_input(const Masks<T>& mk, const T* Hs_t, Rows rows, i64 n, i64 P,
                              std::vector<T>& scratch, i64* ld) {
  if (!mk.drop) {
    *ld = rows.stride * P;
    return Hs_t + rows.first * P;
  }
  for (i64 r = 0; r < n; ++r) {
    const i64 b = rows.row(r);
    const T* __restrict h = Hs_t + b * P;
    const T* __restrict d = mk.drop + b * P;
    T* __restrict o = scratch.data() + r * P;
#pragma omp simd
    for (i64 j = 0; j < P; ++j) o[j] = h[j] * d[j];
  }
  *ld = P;
  return scratch.data();
}

// Backward: δh_{t−1} of the rows (n × P, ld P) that entered through the product, times the
// dropout mask, plus what zoneout kept
template <typename T>
inline void finish_carry(const Masks<T>& mk, Rows rows, i64 n, i64 P, T* dh, const T* kept) {
  for (i64 r = 0; r < n; ++r) {
    T* __restrict d = dh + r * P;
    if (mk.drop) {
      const T* __restrict m = mk.drop + rows.row(r) * P;
#pragma omp simd
      for (i64 j = 0; j < P; ++j) d[j] *= m[j];
    }
    if (kept) {
      const T* __restrict k = kept + r * P;
#pragma omp simd
      for (i64 j = 0; j < P; ++j) d[j] += k[j];
    }
  }
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
