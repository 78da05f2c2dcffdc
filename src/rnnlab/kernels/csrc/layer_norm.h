// The layer norms of the layer-normalised cells (cells/layer_norm.py, lstm_ln.py, gru_ln.py),
// row by row, for the loops. LN(v) = γ n + β with n = (v − μ) r, r = 1/√(var + ε),
// ε = 1e-5 (torch.nn.LayerNorm's); its backward δv = r (δn − mean δn − n mean(δn n)) for
// δn = γ δ(γ n + β). Each product is normalised over its whole gate vector: nG blocks of H.
#pragma once

#include <cmath>

#include "engine.h"

namespace rnnlab {

template <typename T>
struct LayerNorms {  // a cell's layer norms; all null for the plain cells
  const T* g_x = nullptr;   // (nG·H) γ_x, of u = W_ih x_t's normalisation (xw holds u on entry)
  const T* beta = nullptr;  // (nG·H) what is added to the input side after it (β_x + b_ih …)
  const T* g_h = nullptr;   // (nG·H) γ_h, of v = W_hh h_{t−1}'s
  const T* g_c = nullptr;   // LSTM: (H) γ_c, β_c, of c_t's
  const T* b_c = nullptr;
  T* n_x = nullptr;  // (nG, T, B, H) n^x, gate-major
  T* r_x = nullptr;  // (T, B) its 1/√(var + ε)
  T* n_h = nullptr;  // (nG, T, B, H) n^h
  T* r_h = nullptr;  // (T, B)
  T* n_c = nullptr;  // LSTM: (T, B, H) n^c
  T* r_c = nullptr;  // LSTM: (T, B)
  T* dV = nullptr;   // backward: (nG, T, B, H) δv_t, gate-major, for ∂L/∂W_hh
  T* dU = nullptr;   // backward: (nG, T, B, H) δu_t, for ∂L/∂W_ih and ∂L/∂x
  T* sums = nullptr; // backward: ∂L/∂γ_x, ∂L/∂γ_h (nG·H each) [, ∂L/∂γ_c, ∂L/∂β_c], summed
  bool on() const { return g_h != nullptr; }
};

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

// u = W_ih x_t (step t's nG gate-major rows of xw) -> γ_x n^x + β in place; n^x, r^x kept
template <typename T>
inline void normalise_input(const LayerNorms<T>& ln, i64 nG, T* xw, i64 t, i64 b, i64 TT,
                            i64 B, i64 H) {
  const i64 gs = TT * B * H, at = (t * B + b) * H;  // gate stride, row offset
  T mu, r;
  moments(xw + at, nG, H, gs, &mu, &r);
  ln.r_x[t * B + b] = r;
  for (i64 q = 0; q < nG; ++q) {
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

// v = W_hh h_{t−1} (one token-major row of nG·H) -> γ_h n^h in place; n^h (gate-major), r^h
// kept
template <typename T>
inline void normalise_product(const LayerNorms<T>& ln, i64 nG, T* __restrict v, i64 t, i64 b,
                              i64 TT, i64 B, i64 H) {
  T mu, r;
  moments(v, 1, nG * H, 0, &mu, &r);
  ln.r_h[t * B + b] = r;
  for (i64 q = 0; q < nG; ++q) {
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

// Undoes both products' normalisations for one row. In: the input side's δ (gate-major rows of
// dG, δ(γ_x n^x + β)) and the recurrent side's (token-major, nG·H, in dw, δ(γ_h n^h)); out: δv
// in dw (for δh_{t−1} = W_hhᵀ δv) and in dV, δu in dU (gate-major, for the products after the
// loop); sums ∂L/∂γ_x, ∂L/∂γ_h into sg[0..nG·H), sg[nG·H..2nG·H). `scratch` holds nG·H.
template <typename T>
inline void gate_norm_back(const LayerNorms<T>& ln, i64 nG, const T* __restrict dG,
                           T* __restrict dw, T* __restrict sg, T* __restrict scratch, i64 t,
                           i64 b, i64 TT, i64 B, i64 H) {
  const i64 gs = TT * B * H, at = (t * B + b) * H, G = nG * H;
  T sx1 = 0, sx2 = 0, sh1 = 0, sh2 = 0;
  for (i64 q = 0; q < nG; ++q) {
    const T* __restrict nx = ln.n_x + q * gs + at;
    const T* __restrict nh = ln.n_h + q * gs + at;
    const T* __restrict gx = ln.g_x + q * H;
    const T* __restrict gh = ln.g_h + q * H;
    const T* __restrict dq = dG + q * gs + at;
    T* __restrict ax = sg + q * H;
    T* __restrict ah = sg + G + q * H;
    T* __restrict wq = dw + q * H;
    T* __restrict uq = scratch + q * H;
#pragma omp simd reduction(+ : sx1, sx2, sh1, sh2)
    for (i64 j = 0; j < H; ++j) {
      const T a = dq[j], w = wq[j];
      ax[j] += a * nx[j];
      ah[j] += w * nh[j];
      const T u = gx[j] * a, v = gh[j] * w;
      uq[j] = u, wq[j] = v;
      sx1 += u, sx2 += u * nx[j];
      sh1 += v, sh2 += v * nh[j];
    }
  }
  const T rx = ln.r_x[t * B + b], rh = ln.r_h[t * B + b];
  sx1 /= T(G), sx2 /= T(G), sh1 /= T(G), sh2 /= T(G);
  for (i64 q = 0; q < nG; ++q) {
    const T* __restrict nx = ln.n_x + q * gs + at;
    const T* __restrict nh = ln.n_h + q * gs + at;
    const T* __restrict uq = scratch + q * H;
    T* __restrict wq = dw + q * H;
    T* __restrict dU = ln.dU + q * gs + at;
    T* __restrict dV = ln.dV + q * gs + at;
#pragma omp simd
    for (i64 j = 0; j < H; ++j) {
      dU[j] = rx * (uq[j] - sx1 - nx[j] * sx2);
      const T v = rh * (wq[j] - sh1 - nh[j] * sh2);
      wq[j] = v, dV[j] = v;
    }
  }
}

}  // namespace rnnlab
