// LSTM with forget gate (optional peepholes, projection, the 1997 truncation): the loops of
// rnnlab/cells/lstm.py, whose docstring states the equations. Gate order i, f, g, o.
#include "lstm.h"
#include "lstm_norm.h"

#include <optional>

namespace rnnlab {

template <typename T>
void lstm_forward(const LSTMTape<T>& tp, int threads) {
  const i64 TT = tp.steps, B = tp.B, H = tp.H, P = tp.P, G = 4 * H;
  const std::vector<T> zeros(3 * H, T(0));  // the peepholes, when there are none
  const T* __restrict p_i = tp.peep ? tp.peep : zeros.data();
  const T* __restrict p_f = p_i + H;
  const T* __restrict p_o = p_i + 2 * H;
  PackedB<T> W_hh_t, W_hr_t;  // W_hhᵀ, W_hrᵀ, packed once for every step
  W_hh_t.pack(true, P, G, tp.W_hh, P);
  if (tp.m) W_hr_t.pack(true, H, P, tp.W_hr, H);
  const Zone<T>&zh = tp.mk.zone[0], &zc = tp.mk.zone[1];
  const LayerNorms<T>& ln = tp.ln;
  for_rows(B, threads, 4, [&](Rows rows) {
    std::vector<T> hw(rows.count(B) * G);  // W_hh h_{t-1}, token-major: one product's layout
    std::vector<T> hd(tp.mk.drop ? rows.count(B) * P : 0);  // h_{t−1} ⊙ drop
    for (i64 t = 0; t < TT; ++t) {
      const i64 n = rows.count(running(tp.batch_sizes, B, t));
      if (n == 0) break;
      const i64 b0 = rows.first, s = rows.stride;
      i64 ld;
      const T* h_in = product_input(tp.mk, tp.Hs + t * B * P, rows, n, P, hd, &ld);
      gemm<T>(false, n, h_in, ld, W_hh_t, T(0), hw.data(), G);
      for (i64 r = 0; r < n; ++r) {
        const i64 b = rows.row(r);
        if (ln.on()) {
          normalise_input(ln, 4, tp.xw, t, b, TT, B, H);
          normalise_product(ln, 4, hw.data() + r * G, t, b, TT, B, H);
        }
        const T* __restrict a = hw.data() + r * G;
        T* __restrict i = tp.xw + ((0 * TT + t) * B + b) * H;
        T* __restrict f = tp.xw + ((1 * TT + t) * B + b) * H;
        T* __restrict g = tp.xw + ((2 * TT + t) * B + b) * H;
        T* __restrict o = tp.xw + ((3 * TT + t) * B + b) * H;
        const T* __restrict c_prev = tp.Cs + (t * B + b) * H;
        T* __restrict c = tp.Cs + ((t + 1) * B + b) * H;
        T* __restrict tc = tp.tanh_c + (t * B + b) * H;
        T* __restrict m = tp.m ? tp.m + (t * B + b) * H : tp.Hs + ((t + 1) * B + b) * P;
#pragma omp simd
        for (i64 j = 0; j < H; ++j) {
          // a = W_ih x + b + W_hh h_{t-1}; i and f peep at c_{t-1}
          const T i_ = fm::sigmoid(i[j] + a[j] + p_i[j] * c_prev[j]);
          const T f_ = fm::sigmoid(f[j] + a[H + j] + p_f[j] * c_prev[j]);
          const T g_ = fm::tanh(g[j] + a[2 * H + j]);
          const T c_ = f_ * c_prev[j] + i_ * g_;  // c = f c_{t-1} + i g
          const T o_ = fm::sigmoid(o[j] + a[3 * H + j] + p_o[j] * c_);  // o peeps at c_t
          const T tc_ = fm::tanh(c_);
          i[j] = i_, f[j] = f_, g[j] = g_, o[j] = o_, c[j] = c_, tc[j] = tc_;
          m[j] = o_ * tc_;  // m = o tanh(c) (= h without W_hr)
        }
        if (ln.on())  // h = o tanh(γ_c n^c + β_c): tanh(y) in place of the tanh(c) above
          normalise_cell(ln, c, o, tc, m, t * B + b, H);
        if (zc.on()) zc.mix(t, b, c_prev, c);  // zoneout: c̃ computed above, c mixed
        if (zh.on() && !tp.m) zh.mix(t, b, tp.Hs + (t * B + b) * P, m);
      }
      if (tp.m) {  // h_t = W_hr m_t
        gemm<T>(false, n, tp.m + (t * B + b0) * H, s * H, W_hr_t, T(0),
                tp.Hs + ((t + 1) * B + b0) * P, s * P);
        if (zh.on())
          for (i64 r = 0; r < n; ++r) {
            const i64 b = rows.row(r);
            zh.mix(t, b, tp.Hs + (t * B + b) * P, tp.Hs + ((t + 1) * B + b) * P);
          }
      }
    }
  });
}

template <typename T>
void lstm_backward(const LSTMTape<T>& tp, bool truncated, const T* d_out, const T* d_h,
                   const T* d_c, T* dG, T* dh_buf, T* dh0, T* dc0, int threads,
                   const Fused<T>* fused, T* d_peep, T* d_W_hr) {
  const i64 TT = tp.steps, B = tp.B, H = tp.H, P = tp.P, G = 4 * H;
  // the truncation drops the peephole paths: zeros then stand in for p_i, p_f, p_o
  const std::vector<T> zeros(3 * H, T(0));
  const T* __restrict p_i = tp.peep && !truncated ? tp.peep : zeros.data();
  const T* __restrict p_f = p_i + H;
  const T* __restrict p_o = p_i + 2 * H;
  const i64* bs = tp.batch_sizes;
  PackedB<T> W_hh, W_hr;  // packed once for every step
  if (!truncated) W_hh.pack(false, G, P, tp.W_hh, P);
  if (tp.m) W_hr.pack(false, P, H, tp.W_hr, H);
  const Zone<T>&zh = tp.mk.zone[0], &zc = tp.mk.zone[1];
  const LayerNorms<T>& ln = tp.ln;
  const T via_tanh_c = ln.on() ? T(0) : T(1);  // with LN, δc's tanh term comes from y's
  for_rows(B, threads, 4, [&](Rows rows) {
    const i64 n0 = rows.count(B), b0 = rows.first, s = rows.stride;
    // the carry: ∂L/∂h, ∂L/∂c at the step being undone
    std::vector<T> dh(n0 * P, T(0)), dc(n0 * H, T(0)), dA(n0 * G), dm(tp.m ? n0 * H : 0);
    // zoneout: the part of δh_t, δc_t that goes straight to h_{t−1}, c_{t−1}
    std::vector<T> kept_h(zh.on() ? n0 * P : 0), kept_c(zc.on() ? n0 * H : 0);
    // fused: this thread's sums of the weight gradients
    std::optional<FusedSum<T>> sums;
    if (fused) sums.emplace(*fused);
    std::vector<T> peep(fused && tp.peep ? 3 * H : 0, T(0)), hrT(fused && tp.m ? H * P : 0);
    // layer norms: a row's scratch, and this thread's sums of ∂L/∂γ_x, γ_h, γ_c, β_c
    std::vector<T> du(ln.on() ? G : 0), lsum(ln.on() ? 10 * H : 0, T(0));
    if (!bs)
      for (i64 r = 0; r < n0; ++r) {
        std::copy(d_h + rows.row(r) * P, d_h + (rows.row(r) + 1) * P, dh.data() + r * P);
        std::copy(d_c + rows.row(r) * H, d_c + (rows.row(r) + 1) * H, dc.data() + r * H);
      }
    for (i64 t = TT - 1; t >= 0; --t) {
      const i64 n = rows.count(running(bs, B, t));
      if (n == 0) continue;
      const i64 last = ending(bs, TT, t);
      for (i64 r = 0; r < n; ++r) {
        const i64 b = rows.row(r);
        T* dhr = dh.data() + r * P;
        if (bs && b >= last) {  // sequence b ends at t: its final-state gradient enters
          for (i64 j = 0; j < P; ++j) dhr[j] += d_h[b * P + j];
          for (i64 j = 0; j < H; ++j) dc[r * H + j] += d_c[b * H + j];
        }
        const T* dout = d_out + (t * B + b) * P;
        for (i64 j = 0; j < P; ++j) dhr[j] += dout[j];
        if (zh.on()) zh.split(t, b, dhr, kept_h.data() + r * P);
        if (zc.on()) zc.split(t, b, dc.data() + r * H, kept_c.data() + r * H);
      }
      const T* dmp = dh.data();
      if (tp.m) {  // undoes h_t = W_hr m_t
        if (fused) {  // ∂L/∂W_hr += δh mᵀ
          for (i64 r = 0; r < n; ++r) {
            const T* __restrict mr = tp.m + (t * B + rows.row(r)) * H;
            const T* __restrict dhr = dh.data() + r * P;
            for (i64 k = 0; k < H; ++k) {
              T* __restrict acc = hrT.data() + k * P;
              const T v = mr[k];
#pragma omp simd
              for (i64 j = 0; j < P; ++j) acc[j] += dhr[j] * v;
            }
          }
        } else {
          for (i64 r = 0; r < n; ++r)
            std::copy(dh.data() + r * P, dh.data() + (r + 1) * P,
                      dh_buf + (t * B + rows.row(r)) * P);
        }
        gemm<T>(false, n, dh.data(), P, W_hr, T(0), dm.data(), H);
        dmp = dm.data();
      }
      for (i64 r = 0; r < n; ++r) {
        const i64 b = rows.row(r);
        const T* __restrict i = tp.xw + ((0 * TT + t) * B + b) * H;
        const T* __restrict f = tp.xw + ((1 * TT + t) * B + b) * H;
        const T* __restrict g = tp.xw + ((2 * TT + t) * B + b) * H;
        const T* __restrict o = tp.xw + ((3 * TT + t) * B + b) * H;
        const T* __restrict tc = tp.tanh_c + (t * B + b) * H;
        const T* __restrict c_prev = tp.Cs + (t * B + b) * H;
        const T* __restrict dmr = dmp + r * H;
        T* __restrict dcr = dc.data() + r * H;
        T* __restrict ar = dA.data() + r * G;
        if (ln.on())  // undoes m = o tanh(y), y = LN(c): δc += the part through y
          cell_norm_back(ln, dmr, o, tc, dcr, lsum.data() + 8 * H, du.data(), t * B + b, H);
#pragma omp simd
        for (i64 j = 0; j < H; ++j) {
          const T a_o = dmr[j] * ((o[j] - o[j] * o[j]) * tc[j]);  // undoes m = o tanh(c): o
          T d = dcr[j] + via_tanh_c * (dmr[j] * ((T(1) - tc[j] * tc[j]) * o[j]));  // tanh(c)
          d += a_o * p_o[j];                                         // undoes o's peephole
          const T a_i = ((i[j] - i[j] * i[j]) * g[j]) * d;  // undoes c = f c_{t-1} + i g
          const T a_f = ((f[j] - f[j] * f[j]) * c_prev[j]) * d;
          const T a_g = ((T(1) - g[j] * g[j]) * i[j]) * d;
          d *= f[j];  // the carousel: δc_{t-1} = f δc_t
          d += a_i * p_i[j];  // undoes the i and f peepholes on c_{t-1}
          d += a_f * p_f[j];
          dcr[j] = d;
          ar[j] = a_i;
          ar[H + j] = a_f;
          ar[2 * H + j] = a_g;
          ar[3 * H + j] = a_o;
        }
        if (!fused) {  // δa for the products after the loop, gate-major
          for (int q = 0; q < 4; ++q)
            std::copy(ar + q * H, ar + (q + 1) * H, dG + ((q * TT + t) * B + b) * H);
        }
        if (ln.on())  // undoes a = γ_x n^x + γ_h n^h + β: δu for W_ih, δv in place of δa
          gate_norm_back(ln, 4, dG, ar, lsum.data(), du.data(), t, b, TT, B, H);
        else if (fused && tp.peep) {  // ∂L/∂p: i, f peep at c_{t−1}, o at c̃_t
          const T* __restrict c = zc.on() ? zc.cand_at(t, b) : tp.Cs + ((t + 1) * B + b) * H;
#pragma omp simd
          for (i64 j = 0; j < H; ++j) {
            peep[j] += ar[j] * c_prev[j];
            peep[H + j] += ar[H + j] * c_prev[j];
            peep[2 * H + j] += ar[3 * H + j] * c[j];
          }
        }
      }
      if (fused)
        sums->add(n, dA.data(), fused->x + (t * B + b0) * fused->I, s * fused->I,
                  tp.Hs + (t * B + b0) * P, s * P,
                  fused->dx ? fused->dx + (t * B + b0) * fused->I : nullptr, s * fused->I);
      if (truncated)  // the 1997 truncation: no error into h_{t-1} through the gates
        std::fill(dh.begin(), dh.begin() + n * P, T(0));
      else  // undoes a += W_hh h_{t-1}: δh_{t-1} = W_hhᵀ δa (W_hhᵀ δv with layer norms)
        gemm<T>(false, n, dA.data(), G, W_hh, T(0), dh.data(), P);
      if (!truncated || zh.on())  // (× drop; + what zoneout kept)
        finish_carry(truncated ? Masks<T>{} : tp.mk, rows, n, P, dh.data(),
                     zh.on() ? kept_h.data() : nullptr);
      if (zc.on())
        for (i64 j = 0; j < n * H; ++j) dc[j] += kept_c[j];
    }
    for (i64 r = 0; r < n0; ++r) {
      std::copy(dh.data() + r * P, dh.data() + (r + 1) * P, dh0 + rows.row(r) * P);
      std::copy(dc.data() + r * H, dc.data() + (r + 1) * H, dc0 + rows.row(r) * H);
    }
    if (ln.on()) {
#pragma omp critical(rnnlab_lstm_norm_sums)
      for (i64 k = 0; k < 10 * H; ++k) ln.sums[k] += lsum[k];
    }
    if (fused) {
      sums->merge();
#pragma omp critical(rnnlab_fused_lstm)
      {
        for (std::size_t j = 0; j < peep.size(); ++j) d_peep[j] += peep[j];
        for (i64 k = 0; k < (tp.m ? H : 0); ++k)
          for (i64 j = 0; j < P; ++j) d_W_hr[j * H + k] += hrT[k * P + j];
      }
    }
  });
}

template void lstm_forward<float>(const LSTMTape<float>&, int);
template void lstm_forward<double>(const LSTMTape<double>&, int);
template void lstm_backward<float>(const LSTMTape<float>&, bool, const float*, const float*,
                                   const float*, float*, float*, float*, float*, int,
                                   const Fused<float>*, float*, float*);
template void lstm_backward<double>(const LSTMTape<double>&, bool, const double*,
                                    const double*, const double*, double*, double*, double*,
                                    double*, int, const Fused<double>*, double*, double*);

}  // namespace rnnlab
