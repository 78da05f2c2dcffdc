// The LSTM's own layer norm, of c_t where it enters h_t = o tanh(LN(c_t)) (cells/lstm_ln.py),
// row by row, for lstm.cpp's loops; the products' norms are layer_norm.h's (4 gate blocks).
#pragma once

#include "layer_norm.h"

namespace rnnlab {

// c_t -> tanh(y), y = γ_c n^c + β_c, and m = o tanh(y); n^c, r^c kept
template <typename T>
inline void normalise_cell(const LayerNorms<T>& ln, const T* __restrict c, const T* __restrict o,
                           T* __restrict ty, T* __restrict m, i64 tb, i64 H) {
  T mu, r;
  moments(c, 1, H, 0, &mu, &r);
  ln.r_c[tb] = r;
  T* __restrict nc = ln.n_c + tb * H;
#pragma omp simd
  for (i64 j = 0; j < H; ++j) {
    nc[j] = (c[j] - mu) * r;
    ty[j] = fm::tanh(ln.g_c[j] * nc[j] + ln.b_c[j]);
    m[j] = o[j] * ty[j];
  }
}

// Undoes m = o tanh(y), y = LN(c): δc += the part through y; sums ∂L/∂γ_c, ∂L/∂β_c into
// sg[0..H), sg[H..2H). `scratch` holds H entries.
template <typename T>
inline void cell_norm_back(const LayerNorms<T>& ln, const T* __restrict dm, const T* __restrict o,
                           const T* __restrict ty, T* __restrict dc, T* __restrict sg,
                           T* __restrict scratch, i64 tb, i64 H) {
  const T* __restrict nc = ln.n_c + tb * H;
  T s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
  for (i64 j = 0; j < H; ++j) {
    const T dy = dm[j] * ((T(1) - ty[j] * ty[j]) * o[j]);
    sg[j] += dy * nc[j];
    sg[H + j] += dy;
    const T dn = ln.g_c[j] * dy;
    scratch[j] = dn;
    s1 += dn;
    s2 += dn * nc[j];
  }
  const T r = ln.r_c[tb], m1 = s1 / T(H), m2 = s2 / T(H);
#pragma omp simd
  for (i64 j = 0; j < H; ++j) dc[j] += r * (scratch[j] - m1 - nc[j] * m2);
}

}  // namespace rnnlab
