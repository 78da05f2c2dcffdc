// LSTM with forget gate (optional peepholes, projection, the 1997 truncation): the loops of
// rnnlab/cells/lstm.py, whose docstring states the equations. Gate order i, f, g, o.
#include "lstm.h"
#include "lstm_norm.h"

#include <array>
#include <optional>
#include <type_traits>

namespace rnnlab {

// A gate block of step t, row b (a block the variant does not have: null)
template <typename T>
inline T* block(T* xw, int k, i64 TT, i64 t, i64 B, i64 b, i64 H) {
  return k < 0 ? nullptr : xw + ((k * TT + t) * B + b) * H;
}

// The peephole weights of (i, f, o) (zeros where there are none, or the gate is gone)
template <typename T, int V>
std::array<const T*, 3> peepholes(const T* peep, const std::vector<T>& zeros, i64 H) {
  using K = Gates<V>;
  const int at[3] = {K::pi, K::pf, K::po};
  std::array<const T*, 3> p;
  for (int k = 0; k < 3; ++k) p[k] = peep && at[k] >= 0 ? peep + at[k] * H : zeros.data();
  return p;
}

template <typename T, int V>
void lstm_forward_v(const LSTMTape<T>& tp, int threads) {
  using K = Gates<V>;
  const i64 TT = tp.steps, B = tp.B, H = tp.H, P = tp.P, G = K::n * H, Q = 3 * H;
  const std::vector<T> zeros(H, T(0));  // the peepholes, when there are none
  const auto pp = peepholes<T, V>(tp.peep, zeros, H);
  const T* __restrict p_i = pp[0];
  const T* __restrict p_f = pp[1];
  const T* __restrict p_o = pp[2];
  PackedB<T> W_hh_t, W_hr_t, W_gr_t;  // W_hhᵀ, W_hrᵀ (W_grᵀ), packed once for every step
  W_hh_t.pack(true, P, G, tp.W_hh, P);
  if (tp.m) W_hr_t.pack(true, H, P, tp.W_hr, H);
  if constexpr (K::fgr) W_gr_t.pack(true, Q, Q, tp.W_gr, Q);
  const Zone<T>&zh = tp.mk.zone[0], &zc = tp.mk.zone[1];
  const LayerNorms<T>& ln = tp.ln;
  for_rows(B, threads, 4, [&](Rows rows) {
    std::vector<T> hw(rows.count(B) * G);  // W_hh h_{t-1}, token-major: one product's layout
    std::vector<T> hd(tp.mk.drop ? rows.count(B) * P : 0);  // h_{t−1} ⊙ drop
    std::vector<T> gq(K::fgr ? rows.count(B) * Q : 0);  // FGR: W_gr q_{t−1}
    for (i64 t = 0; t < TT; ++t) {
      const i64 n = rows.count(running(tp.batch_sizes, B, t));
      if (n == 0) break;
      const i64 b0 = rows.first, s = rows.stride;
      i64 ld;
      const T* h_in = product_input(tp.mk, tp.Hs + t * B * P, rows, n, P, hd, &ld);
      gemm<T>(false, n, h_in, ld, W_hh_t, T(0), hw.data(), G);
      if constexpr (K::fgr)
        gemm<T>(false, n, tp.Qs + (t * B + b0) * Q, s * Q, W_gr_t, T(0), gq.data(), Q);
      for (i64 r = 0; r < n; ++r) {
        const i64 b = rows.row(r);
        if (ln.on()) {
          normalise_input(ln, 4, tp.xw, t, b, TT, B, H);
          normalise_product(ln, 4, hw.data() + r * G, t, b, TT, B, H);
        }
        const T* __restrict a = hw.data() + r * G;
        T* __restrict i = block(tp.xw, K::bi, TT, t, B, b, H);
        T* __restrict f = block(tp.xw, K::bf, TT, t, B, b, H);
        T* __restrict g = block(tp.xw, K::bg, TT, t, B, b, H);
        T* __restrict o = block(tp.xw, K::bo, TT, t, B, b, H);
        const T* __restrict c_prev = tp.Cs + (t * B + b) * H;
        T* __restrict c = tp.Cs + ((t + 1) * B + b) * H;
        T* __restrict tc = tp.tanh_c + (t * B + b) * H;
        T* __restrict m = tp.m ? tp.m + (t * B + b) * H : tp.Hs + ((t + 1) * B + b) * P;
        if constexpr (V == VANILLA) {
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
        } else {  // a variant: a gone gate is its constant, s(c) = tanh(c) or c
          const T* __restrict q = K::fgr ? gq.data() + r * Q : zeros.data();
          const i64 qs = K::fgr ? H : 0;  // FGR's (i, f, o) parts of W_gr q_{t−1}
          T* __restrict q_new = K::fgr ? tp.Qs + ((t + 1) * B + b) * Q : nullptr;
#pragma omp simd
          for (i64 j = 0; j < H; ++j) {
            T i_ = T(1), f_ = T(1), o_ = T(1);
            if constexpr (K::has_f)
              f_ = fm::sigmoid(f[j] + a[K::bf * H + j] + p_f[j] * c_prev[j] + q[qs + j]);
            if constexpr (K::has_i)
              i_ = fm::sigmoid(i[j] + a[j] + p_i[j] * c_prev[j] + q[j]);
            else if constexpr (K::coupled)
              i_ = T(1) - f_;
            const T ag = g[j] + a[K::bg * H + j];
            const T g_ = K::linear_g ? ag : fm::tanh(ag);
            const T c_ = f_ * c_prev[j] + i_ * g_;
            if constexpr (K::has_o)
              o_ = fm::sigmoid(o[j] + a[K::bo * H + j] + p_o[j] * c_ + q[2 * qs + j]);
            const T s_ = K::linear_s ? c_ : fm::tanh(c_);
            if constexpr (K::has_i) i[j] = i_;
            if constexpr (K::has_f) f[j] = f_;
            if constexpr (K::has_o) o[j] = o_;
            if constexpr (K::fgr) q_new[j] = i_, q_new[H + j] = f_, q_new[2 * H + j] = o_;
            g[j] = g_, c[j] = c_, tc[j] = s_;
            m[j] = o_ * s_;
          }
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

template <typename T, int V>
void lstm_backward_v(const LSTMTape<T>& tp, bool truncated, const T* d_out, const T* d_h,
                     const T* d_c, T* dG, T* dh_buf, T* dh0, T* dc0, int threads,
                     const Fused<T>* fused, T* d_peep, T* d_W_hr, const T* d_q, T* dq0) {
  using K = Gates<V>;
  const i64 TT = tp.steps, B = tp.B, H = tp.H, P = tp.P, G = K::n * H, Q = 3 * H;
  // the truncation drops the peephole paths: zeros then stand in for p_i, p_f, p_o
  const std::vector<T> zeros(H, T(0));
  const auto pp = peepholes<T, V>(truncated ? nullptr : tp.peep, zeros, H);
  const T* __restrict p_i = pp[0];
  const T* __restrict p_f = pp[1];
  const T* __restrict p_o = pp[2];
  const i64* bs = tp.batch_sizes;
  PackedB<T> W_hh, W_hr, W_gr;  // packed once for every step
  if (!truncated) W_hh.pack(false, G, P, tp.W_hh, P);
  if (tp.m) W_hr.pack(false, P, H, tp.W_hr, H);
  if constexpr (K::fgr) W_gr.pack(false, Q, Q, tp.W_gr, Q);
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
    // FGR: the carry δq, and a step's [δa_i; δa_f; δa_o] for δq_{t−1} = W_grᵀ [·]
    std::vector<T> dq(K::fgr ? n0 * Q : 0, T(0)), a_ifo(K::fgr ? n0 * Q : 0);
    if (!bs)
      for (i64 r = 0; r < n0; ++r) {
        std::copy(d_h + rows.row(r) * P, d_h + (rows.row(r) + 1) * P, dh.data() + r * P);
        std::copy(d_c + rows.row(r) * H, d_c + (rows.row(r) + 1) * H, dc.data() + r * H);
        if constexpr (K::fgr)
          std::copy(d_q + rows.row(r) * Q, d_q + (rows.row(r) + 1) * Q, dq.data() + r * Q);
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
          if constexpr (K::fgr)
            for (i64 j = 0; j < Q; ++j) dq[r * Q + j] += d_q[b * Q + j];
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
        const T* __restrict i = block(tp.xw, K::bi, TT, t, B, b, H);
        const T* __restrict f = block(tp.xw, K::bf, TT, t, B, b, H);
        const T* __restrict g = block(tp.xw, K::bg, TT, t, B, b, H);
        const T* __restrict o = block(tp.xw, K::bo, TT, t, B, b, H);
        const T* __restrict tc = tp.tanh_c + (t * B + b) * H;
        const T* __restrict c_prev = tp.Cs + (t * B + b) * H;
        const T* __restrict dmr = dmp + r * H;
        T* __restrict dcr = dc.data() + r * H;
        T* __restrict ar = dA.data() + r * G;
        if (ln.on())  // undoes m = o tanh(y), y = LN(c): δc += the part through y
          cell_norm_back(ln, dmr, o, tc, dcr, lsum.data() + 8 * H, du.data(), t * B + b, H);
        if constexpr (V == VANILLA) {
#pragma omp simd
          for (i64 j = 0; j < H; ++j) {
            const T a_o = dmr[j] * ((o[j] - o[j] * o[j]) * tc[j]);  // undoes m = o tanh(c): o
            T d = dcr[j] + via_tanh_c * (dmr[j] * ((T(1) - tc[j] * tc[j]) * o[j]));  // tanh c
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
        } else {  // a variant (cells/lstm_variants.py's backward); FGR's δq_t adds to δi, δf, δo
          const T* __restrict dqr = K::fgr ? dq.data() + r * Q : zeros.data();
          const i64 qs = K::fgr ? H : 0;
#pragma omp simd
          for (i64 j = 0; j < H; ++j) {
            const T ds = K::linear_s ? T(1) : T(1) - tc[j] * tc[j];  // s'(c_t)
            T d = dcr[j], a_o = T(0);
            if constexpr (K::has_o) {
              a_o = (dmr[j] * tc[j] + dqr[2 * qs + j]) * (o[j] - o[j] * o[j]);
              d += dmr[j] * (ds * o[j]) + a_o * p_o[j];
            } else {
              d += dmr[j] * ds;
            }
            const T d_i = d * g[j] + dqr[j];  // ∂L/∂i, ∂L/∂f
            T d_f = d * c_prev[j] + dqr[qs + j];
            T i_ = T(1);
            if constexpr (K::has_i) i_ = i[j];
            if constexpr (K::coupled) i_ = T(1) - f[j], d_f -= d_i;  // i = 1 − f
            const T a_g = K::linear_g ? d * i_ : (T(1) - g[j] * g[j]) * (d * i_);
            T a_i = T(0), a_f = T(0);
            if constexpr (K::has_i) a_i = d_i * (i[j] - i[j] * i[j]);
            if constexpr (K::has_f) {
              a_f = d_f * (f[j] - f[j] * f[j]);
              d *= f[j];  // the carousel (f = 1 without a forget gate)
            }
            d += a_i * p_i[j];
            d += a_f * p_f[j];
            dcr[j] = d;
            if constexpr (K::has_i) ar[K::bi * H + j] = a_i;
            if constexpr (K::has_f) ar[K::bf * H + j] = a_f;
            ar[K::bg * H + j] = a_g;
            if constexpr (K::has_o) ar[K::bo * H + j] = a_o;
            if constexpr (K::fgr) {
              T* __restrict aq = a_ifo.data() + r * Q;
              aq[j] = a_i, aq[H + j] = a_f, aq[2 * H + j] = a_o;
            }
          }
        }
        if (!fused) {  // δa for the products after the loop, gate-major
          for (int q = 0; q < K::n; ++q)
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
      if constexpr (K::fgr)  // δq_{t−1} = W_grᵀ [δa_i; δa_f; δa_o]
        gemm<T>(false, n, a_ifo.data(), Q, W_gr, T(0), dq.data(), Q);
    }
    for (i64 r = 0; r < n0; ++r) {
      std::copy(dh.data() + r * P, dh.data() + (r + 1) * P, dh0 + rows.row(r) * P);
      std::copy(dc.data() + r * H, dc.data() + (r + 1) * H, dc0 + rows.row(r) * H);
      if constexpr (K::fgr)
        std::copy(dq.data() + r * Q, dq.data() + (r + 1) * Q, dq0 + rows.row(r) * Q);
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

template <typename T>
void lstm_forward(const LSTMTape<T>& tp, int threads) {
  switch (tp.variant) {
    case NIG: return lstm_forward_v<T, NIG>(tp, threads);
    case NFG: return lstm_forward_v<T, NFG>(tp, threads);
    case NOG: return lstm_forward_v<T, NOG>(tp, threads);
    case NIAF: return lstm_forward_v<T, NIAF>(tp, threads);
    case NOAF: return lstm_forward_v<T, NOAF>(tp, threads);
    case CIFG: return lstm_forward_v<T, CIFG>(tp, threads);
    case FGR: return lstm_forward_v<T, FGR>(tp, threads);
    default: return lstm_forward_v<T, VANILLA>(tp, threads);
  }
}

template <typename T>
void lstm_backward(const LSTMTape<T>& tp, bool truncated, const T* d_out, const T* d_h,
                   const T* d_c, T* dG, T* dh_buf, T* dh0, T* dc0, int threads,
                   const Fused<T>* fused, T* d_peep, T* d_W_hr, const T* d_q, T* dq0) {
  const auto run = [&](auto v) {
    lstm_backward_v<T, decltype(v)::value>(tp, truncated, d_out, d_h, d_c, dG, dh_buf, dh0,
                                           dc0, threads, fused, d_peep, d_W_hr, d_q, dq0);
  };
  switch (tp.variant) {
    case NIG: return run(std::integral_constant<int, NIG>{});
    case NFG: return run(std::integral_constant<int, NFG>{});
    case NOG: return run(std::integral_constant<int, NOG>{});
    case NIAF: return run(std::integral_constant<int, NIAF>{});
    case NOAF: return run(std::integral_constant<int, NOAF>{});
    case CIFG: return run(std::integral_constant<int, CIFG>{});
    case FGR: return run(std::integral_constant<int, FGR>{});
    default: return run(std::integral_constant<int, VANILLA>{});
  }
}

template void lstm_forward<float>(const LSTMTape<float>&, int);
template void lstm_forward<double>(const LSTMTape<double>&, int);
template void lstm_backward<float>(const LSTMTape<float>&, bool, const float*, const float*,
                                   const float*, float*, float*, float*, float*, int,
                                   const Fused<float>*, float*, float*, const float*, float*);
template void lstm_backward<double>(const LSTMTape<double>&, bool, const double*,
                                    const double*, const double*, double*, double*, double*,
                                    double*, int, const Fused<double>*, double*, double*,
                                    const double*, double*);

}  // namespace rnnlab
