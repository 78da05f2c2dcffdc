// The layer norms of cells/lstm_ln.py, row by row, for lstm.cpp's loops. LN(v) = γ n + β with
// n = (v − μ) r, r = 1/√(var + ε), ε = 1e-5 (torch.nn.LayerNorm's); its backward
// δv = r (δn − mean δn − n mean(δn n)) for δn = γ δ(γ n + β).
#pragma once

#include <cmath>

#include "lstm.h"

namespace rnnlab {

// μ and r of a row of `blocks` × `width` entries, blocks `stride` apart: one pass, sums in
// double (so E[v²] − μ² keeps float32's digits too)
template <typename T>
inline void moments(const T* __restrict v, i64 blocks, i64 width, i64 stride, T* mu, T* r) {
  double s = 0, q = 0;
  for (i64 k = 0; k < blocks; ++k) {
    const T* __restrict vk = v + k * stride;
#pragma omp simd reduction(+ : s, q)
    for (i64 j = 0; j < width; ++j) {
      const double x = vk[j];
      s += x;
      q += x * x;
    }
  }
  const double n = double(blocks * width), m = s / n;
  *mu = T(m);
  *r = T(1.0 / std::sqrt(std::max(q / n - m * m, 0.0) + 1e-5));
}

// u = W_ih x_t (step t's gate-major rows of xw) -> γ_x n^x + β in place; n^x, r^x kept
template <typename T>
inline void normalise_input(const LSTMNorm<T>& ln, T* xw, i64 t, i64 b, i64 TT, i64 B, i64 H) {
  const i64 gs = TT * B * H, at = (t * B + b) * H;  // gate stride, row offset
  T mu, r;
  moments(xw + at, 4, H, gs, &mu, &r);
  ln.r_x[t * B + b] = r;
  for (i64 q = 0; q < 4; ++q) {
    T* __restrict u = xw + q * gs + at;
    T* __restrict nx = ln.n_x + q * gs + at;
    const T* __restrict gq = ln.g_x + q * H;
    const T* __restrict bq = ln.beta + q * H;
#pragma omp simd
    for (i64 j = 0; j < H; ++j) {
      nx[j] = (u[j] - mu) * r;
      u[j] = gq[j] * nx[j] + bq[j];
    }
  }
}

// v = W_hh h_{t−1} (one token-major row of 4H) -> γ_h n^h in place; n^h (gate-major), r^h kept
template <typename T>
inline void normalise_product(const LSTMNorm<T>& ln, T* __restrict v, i64 t, i64 b, i64 TT,
                              i64 B, i64 H) {
  T mu, r;
  moments(v, 1, 4 * H, 0, &mu, &r);
  ln.r_h[t * B + b] = r;
  for (i64 q = 0; q < 4; ++q) {
    T* __restrict nh = ln.n_h + ((q * TT + t) * B + b) * H;
    T* __restrict vq = v + q * H;
    const T* __restrict gq = ln.g_h + q * H;
#pragma omp simd
    for (i64 j = 0; j < H; ++j) {
      nh[j] = (vq[j] - mu) * r;
      vq[j] = gq[j] * nh[j];
    }
  }
}

// c_t -> tanh(y), y = γ_c n^c + β_c, and m = o tanh(y); n^c, r^c kept
template <typename T>
inline void normalise_cell(const LSTMNorm<T>& ln, const T* __restrict c, const T* __restrict o,
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
inline void cell_norm_back(const LSTMNorm<T>& ln, const T* __restrict dm, const T* __restrict o,
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

// Undoes a = γ_x n^x + γ_h n^h + β for one row: δa (token-major, 4H) in da; out δv in da
// (for δh_{t−1} = W_hhᵀ δv) and in dV, δu in dU (gate-major, for the products after the loop);
// sums ∂L/∂γ_x, ∂L/∂γ_h into sg[0..4H), sg[4H..8H). `scratch` holds 4H entries.
template <typename T>
inline void gate_norm_back(const LSTMNorm<T>& ln, T* __restrict da, T* __restrict sg,
                           T* __restrict scratch, i64 t, i64 b, i64 TT, i64 B, i64 H) {
  const i64 gs = TT * B * H, at = (t * B + b) * H, G = 4 * H;
  T sx1 = 0, sx2 = 0, sh1 = 0, sh2 = 0;
  for (i64 q = 0; q < 4; ++q) {
    const T* __restrict nx = ln.n_x + q * gs + at;
    const T* __restrict nh = ln.n_h + q * gs + at;
    const T* __restrict gx = ln.g_x + q * H;
    const T* __restrict gh = ln.g_h + q * H;
    T* __restrict ax = sg + q * H;
    T* __restrict ah = sg + G + q * H;
    T* __restrict aq = da + q * H;
    T* __restrict uq = scratch + q * H;
#pragma omp simd reduction(+ : sx1, sx2, sh1, sh2)
    for (i64 j = 0; j < H; ++j) {
      const T a = aq[j];
      ax[j] += a * nx[j];
      ah[j] += a * nh[j];
      const T u = gx[j] * a, v = gh[j] * a;
      uq[j] = u, aq[j] = v;
      sx1 += u, sx2 += u * nx[j];
      sh1 += v, sh2 += v * nh[j];
    }
  }
  const T rx = ln.r_x[t * B + b], rh = ln.r_h[t * B + b];
  sx1 /= T(G), sx2 /= T(G), sh1 /= T(G), sh2 /= T(G);
  for (i64 q = 0; q < 4; ++q) {
    const T* __restrict nx = ln.n_x + q * gs + at;
    const T* __restrict nh = ln.n_h + q * gs + at;
    const T* __restrict uq = scratch + q * H;
    T* __restrict aq = da + q * H;
    T* __restrict dU = ln.dU + q * gs + at;
    T* __restrict dV = ln.dV + q * gs + at;
#pragma omp simd
    for (i64 j = 0; j < H; ++j) {
      dU[j] = rx * (uq[j] - sx1 - nx[j] * sx2);
      const T v = rh * (aq[j] - sh1 - nh[j] * sh2);
      aq[j] = v, dV[j] = v;
    }
  }
}

}  // namespace rnnlab
