// GRU, gate order r, z, n, in both forms: the loops of rnnlab/cells/gru.py, whose docstring
// states the equations; with layer norms (reset_after), cells/gru_ln.py's.
#include "gru.h"

namespace rnnlab {

template <typename T>
void gru_forward(const GRUTape<T>& tp, int threads) {
  const i64 TT = tp.steps, B = tp.B, H = tp.H;
  const bool after = tp.hw != nullptr;
  const std::vector<T> zeros(3 * H, T(0));
  const T* __restrict b_hh = tp.b_hh ? tp.b_hh : zeros.data();
  PackedB<T> W_t, W_n_t;  // reset_after: W_hhᵀ (H × 3H); else W_{r,z}ᵀ (H × 2H) and W_nᵀ
  if (after) {
    W_t.pack(true, H, 3 * H, tp.W_hh, H);
  } else {
    W_t.pack(true, H, 2 * H, tp.W_hh, H);
    W_n_t.pack(true, H, H, tp.W_hh + 2 * H * H, H);
  }
  const Zone<T>& zh = tp.mk.zone[0];
  const LayerNorms<T>& ln = tp.ln;
  for_rows(B, threads, 4, [&](Rows rows) {
    const i64 n0 = rows.count(B);
    std::vector<T> prod(n0 * 3 * H), rh(after ? 0 : n0 * H);
    std::vector<T> hd(tp.mk.drop ? n0 * H : 0);  // h_{t−1} ⊙ drop
    for (i64 t = 0; t < TT; ++t) {
      const i64 n = rows.count(running(tp.batch_sizes, B, t));
      if (n == 0) break;
      const i64 b0 = rows.first, s = rows.stride, G = after ? 3 * H : 2 * H;
      i64 ld;
      const T* h_in = product_input(tp.mk, tp.Hs + t * B * H, rows, n, H, hd, &ld);
      gemm<T>(false, n, h_in, ld, W_t, T(0), prod.data(), G);
      for (i64 r = 0; r < n; ++r) {
        const i64 b = rows.row(r);
        if (ln.on()) {  // the input side normalised, and the product: γ_h n^h in its place
          normalise_input(ln, 3, tp.xw, t, b, TT, B, H);
          normalise_product(ln, 3, prod.data() + r * G, t, b, TT, B, H);
        }
        const T* __restrict a = prod.data() + r * G;
        T* __restrict xr = tp.xw + ((0 * TT + t) * B + b) * H;
        T* __restrict xz = tp.xw + ((1 * TT + t) * B + b) * H;
        const T* __restrict h_prev = tp.Hs + (t * B + b) * H;
        if (after) {
          T* __restrict hr = tp.hw + ((0 * TT + t) * B + b) * H;
          T* __restrict hz = tp.hw + ((1 * TT + t) * B + b) * H;
          T* __restrict hn = tp.hw + ((2 * TT + t) * B + b) * H;
          T* __restrict xn = tp.xw + ((2 * TT + t) * B + b) * H;
          T* __restrict h = tp.Hs + ((t + 1) * B + b) * H;
#pragma omp simd
          for (i64 j = 0; j < H; ++j) {
            hr[j] = a[j] + b_hh[j];  // W_hk h_{t−1} + b_hk, kept for the backward pass
            hz[j] = a[H + j] + b_hh[H + j];
            hn[j] = a[2 * H + j] + b_hh[2 * H + j];
            const T r_ = fm::sigmoid(xr[j] + hr[j]);
            const T z_ = fm::sigmoid(xz[j] + hz[j]);
            const T n_ = fm::tanh(xn[j] + r_ * hn[j]);  // n = tanh(a_n + r (W_hn h + b_hn))
            xr[j] = r_, xz[j] = z_, xn[j] = n_;
            h[j] = n_ + z_ * (h_prev[j] - n_);  // h = (1 − z) n + z h_{t−1}
          }
          if (zh.on()) zh.mix(t, b, h_prev, h);
        } else {
          T* __restrict rh_ = tp.rh + (t * B + b) * H;
          const T* __restrict hin = h_in + r * ld;  // h_{t−1} (⊙ drop)
#pragma omp simd
          for (i64 j = 0; j < H; ++j) {
            xr[j] = fm::sigmoid(xr[j] + a[j]);
            xz[j] = fm::sigmoid(xz[j] + a[H + j]);
            rh_[j] = xr[j] * hin[j];  // r ⊙ h_{t−1}, the input of W_hn
          }
        }
      }
      if (after) continue;
      // n = tanh(a_n + W_hn (r ⊙ h)): the second product of the step
      gemm<T>(false, n, tp.rh + (t * B + b0) * H, s * H, W_n_t, T(0), rh.data(), H);
      for (i64 r = 0; r < n; ++r) {
        const i64 b = rows.row(r);
        const T* __restrict a = rh.data() + r * H;
        const T* __restrict z = tp.xw + ((1 * TT + t) * B + b) * H;
        T* __restrict xn = tp.xw + ((2 * TT + t) * B + b) * H;
        const T* __restrict h_prev = tp.Hs + (t * B + b) * H;
        T* __restrict h = tp.Hs + ((t + 1) * B + b) * H;
#pragma omp simd
        for (i64 j = 0; j < H; ++j) {
          const T n_ = fm::tanh(xn[j] + a[j]);
          xn[j] = n_;
          h[j] = n_ + z[j] * (h_prev[j] - n_);
        }
        if (zh.on()) zh.mix(t, b, h_prev, h);
      }
    }
  });
}

template <typename T>
void gru_backward(const GRUTape<T>& tp, const T* d_out, const T* d_h, T* dG, T* dhw, T* dh0,
                  int threads) {
  const i64 TT = tp.steps, B = tp.B, H = tp.H;
  const bool after = tp.hw != nullptr;
  const i64* bs = tp.batch_sizes;
  PackedB<T> W, W_rz, W_n;  // reset_after: W_hh (3H × H); else W_{r,z} (2H × H), W_n (H × H)
  if (after) {
    W.pack(false, 3 * H, H, tp.W_hh, H);
  } else {
    W_rz.pack(false, 2 * H, H, tp.W_hh, H);
    W_n.pack(false, H, H, tp.W_hh + 2 * H * H, H);
  }
  const Zone<T>& zh = tp.mk.zone[0];
  const std::vector<T> ones(tp.mk.drop ? 0 : H, T(1));  // the dropout mask, when there is none
  const LayerNorms<T>& ln = tp.ln;
  for_rows(B, threads, 4, [&](Rows rows) {
    const i64 n0 = rows.count(B);
    std::vector<T> dh(n0 * H, T(0)), prod(n0 * 3 * H), rec(n0 * H), drh(after ? 0 : n0 * H);
    // layer norms: a row's scratch, and this thread's sums of ∂L/∂γ_x, ∂L/∂γ_h
    std::vector<T> du(ln.on() ? 3 * H : 0), lsum(ln.on() ? 6 * H : 0, T(0));
    std::vector<T> kept(zh.on() ? n0 * H : 0);  // zoneout: z δh_t, straight to h_{t−1}
    if (!bs)
      for (i64 r = 0; r < n0; ++r)
        std::copy(d_h + rows.row(r) * H, d_h + (rows.row(r) + 1) * H, dh.data() + r * H);
    for (i64 t = TT - 1; t >= 0; --t) {
      const i64 n = rows.count(running(bs, B, t));
      if (n == 0) continue;
      const i64 last = ending(bs, TT, t);
      for (i64 r = 0; r < n; ++r) {  // the carry: + final state (if b ends here) + output
        const i64 b = rows.row(r);
        T* __restrict dhr = dh.data() + r * H;
        const T* __restrict dout = d_out + (t * B + b) * H;
        const T* __restrict fin = d_h + b * H;
        const T enter = bs && b >= last ? T(1) : T(0);
#pragma omp simd
        for (i64 j = 0; j < H; ++j) dhr[j] = dhr[j] + enter * fin[j] + dout[j];
        if (zh.on()) zh.split(t, b, dhr, kept.data() + r * H);
      }
      if (!after)  // δ(r ⊙ h) = W_hnᵀ δa_n needs δa_n first: computed below, row by row
        for (i64 r = 0; r < n; ++r) {
          const i64 b = rows.row(r);
          const T* __restrict z = tp.xw + ((1 * TT + t) * B + b) * H;
          const T* __restrict nn = tp.xw + ((2 * TT + t) * B + b) * H;
          const T* __restrict dhr = dh.data() + r * H;
          T* __restrict dan = dG + ((2 * TT + t) * B + b) * H;
#pragma omp simd
          for (i64 j = 0; j < H; ++j) dan[j] = (T(1) - z[j]) * (T(1) - nn[j] * nn[j]) * dhr[j];
        }
      if (!after)  // undoes a_n += W_hn (r ⊙ h)
        gemm<T>(false, n, dG + ((2 * TT + t) * B + rows.first) * H, rows.stride * H, W_n, T(0),
                drh.data(), H);
      for (i64 r = 0; r < n; ++r) {
        const i64 b = rows.row(r);
        const T* __restrict rr = tp.xw + ((0 * TT + t) * B + b) * H;
        const T* __restrict z = tp.xw + ((1 * TT + t) * B + b) * H;
        const T* __restrict nn = tp.xw + ((2 * TT + t) * B + b) * H;
        const T* __restrict h_prev = tp.Hs + (t * B + b) * H;
        const T* __restrict dhr = dh.data() + r * H;
        T* __restrict dar = dG + ((0 * TT + t) * B + b) * H;
        T* __restrict daz = dG + ((1 * TT + t) * B + b) * H;
        T* __restrict dan = dG + ((2 * TT + t) * B + b) * H;
        T* __restrict p = prod.data() + r * 3 * H;
        if (after) {
          const T* __restrict hn = tp.hw + ((2 * TT + t) * B + b) * H;
          T* __restrict wr = dhw + ((0 * TT + t) * B + b) * H;
          T* __restrict wz = dhw + ((1 * TT + t) * B + b) * H;
          T* __restrict wn = dhw + ((2 * TT + t) * B + b) * H;
#pragma omp simd
          for (i64 j = 0; j < H; ++j) {
            const T an = (T(1) - z[j]) * (T(1) - nn[j] * nn[j]);  // ∂h/∂a_n
            const T az = (h_prev[j] - nn[j]) * z[j] * (T(1) - z[j]);  // ∂h/∂a_z
            const T ar = an * hn[j] * rr[j] * (T(1) - rr[j]);  // ∂h/∂a_r
            dar[j] = wr[j] = p[j] = ar * dhr[j];  // the gates: input and recurrent side
            daz[j] = wz[j] = p[H + j] = az * dhr[j];
            dan[j] = an * dhr[j];
            wn[j] = p[2 * H + j] = an * rr[j] * dhr[j];  // W_hn h sits inside r ⊙ (·)
          }
          if (ln.on())  // undoes both normalisations: δu for W_ih, δv in place of δw
            gate_norm_back(ln, 3, dG, p, lsum.data(), du.data(), t, b, TT, B, H);
        } else {
          const T* __restrict dr = drh.data() + r * H;
          const T* __restrict dm = tp.mk.drop ? tp.mk.drop + b * H : ones.data();
#pragma omp simd
          for (i64 j = 0; j < H; ++j) {
            const T az = (h_prev[j] - nn[j]) * z[j] * (T(1) - z[j]);
            daz[j] = p[H + j] = az * dhr[j];
            // ... through r, which multiplies h_{t−1} ⊙ drop
            dar[j] = p[j] = dr[j] * ((h_prev[j] * dm[j]) * rr[j] * (T(1) - rr[j]));
          }
        }
      }
      // undoes the recurrent products: W_hhᵀ [δ…] (reset_after; δv with layer norms) or
      // W_{r,z}ᵀ [δa_r, δa_z]
      if (after)
        gemm<T>(false, n, prod.data(), 3 * H, W, T(0), rec.data(), H);
      else
        gemm<T>(false, n, prod.data(), 3 * H, W_rz, T(0), rec.data(), H);
      for (i64 r = 0; r < n; ++r) {
        const i64 b = rows.row(r);
        const T* __restrict z = tp.xw + ((1 * TT + t) * B + b) * H;
        const T* __restrict rr = tp.xw + ((0 * TT + t) * B + b) * H;
        const T* __restrict rc = rec.data() + r * H;
        const T* __restrict dm = tp.mk.drop ? tp.mk.drop + b * H : ones.data();
        const T* __restrict kp = zh.on() ? kept.data() + r * H : nullptr;
        T* __restrict dhr = dh.data() + r * H;
        if (after) {
#pragma omp simd
          for (i64 j = 0; j < H; ++j)  // + z δh via h = … + z h; the products saw h ⊙ drop
            dhr[j] = dhr[j] * z[j] + rc[j] * dm[j];
        } else {
          const T* __restrict dr = drh.data() + r * H;
#pragma omp simd
          for (i64 j = 0; j < H; ++j) dhr[j] = dhr[j] * z[j] + (rc[j] + dr[j] * rr[j]) * dm[j];
        }
        if (kp) {
#pragma omp simd
          for (i64 j = 0; j < H; ++j) dhr[j] += kp[j];
        }
      }
    }
    for (i64 r = 0; r < n0; ++r)
      std::copy(dh.data() + r * H, dh.data() + (r + 1) * H, dh0 + rows.row(r) * H);
    if (ln.on()) {
#pragma omp critical(rnnlab_gru_norm_sums)
      for (i64 k = 0; k < 6 * H; ++k) ln.sums[k] += lsum[k];
    }
  });
}

template void gru_forward<float>(const GRUTape<float>&, int);
template void gru_forward<double>(const GRUTape<double>&, int);
template void gru_backward<float>(const GRUTape<float>&, const float*, const float*, float*,
                                  float*, float*, int);
template void gru_backward<double>(const GRUTape<double>&, const double*, const double*,
                                   double*, double*, double*, int);

}  // namespace rnnlab
