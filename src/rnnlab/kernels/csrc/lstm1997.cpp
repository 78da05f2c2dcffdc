// The 1997 LSTM (memory cell blocks, the constant error carousel, no forget gate) as the
// engine runs it: the loops of rnnlab/cells/lstm1997.py, whose docstring states the equations.
#include "lstm1997.h"

#include <optional>

namespace rnnlab {

template <typename T>
void lstm1997_forward(const LSTM1997Tape<T>& tp, int threads) {
  const i64 TT = tp.steps, B = tp.B, K = tp.K, S = tp.S, C = K * S;
  const i64 gK = (tp.output_gate ? 2 : 1) * K, R = gK + C;
  const i64 Y = C + (tp.gate_recurrence ? gK : 0);
  PackedB<T> W_t;
  if (tp.W_hh) W_t.pack(true, Y, R, tp.W_hh, Y);
  for_rows(B, threads, 4, [&](Rows rows) {
    std::vector<T> rec(rows.count(B) * R);
    for (i64 t = 0; t < TT; ++t) {
      const i64 n = rows.count(running(tp.batch_sizes, B, t));
      if (n == 0) break;
      if (tp.W_hh)  // W_rec y(t−1)
        gemm<T>(false, n, tp.Ys + (t * B + rows.first) * Y, rows.stride * Y, W_t, T(0),
                rec.data(), R);
      for (i64 r = 0; r < n; ++r) {
        const i64 b = rows.row(r);
        T* __restrict a = tp.xw + (t * B + b) * R;
        if (tp.W_hh) {
          const T* __restrict w = rec.data() + r * R;
#pragma omp simd
          for (i64 k = 0; k < R; ++k) a[k] += w[k];  // net = W_x x + W_rec y(t−1) + b
        }
#pragma omp simd
        for (i64 k = 0; k < gK; ++k) a[k] = fm::sigmoid(a[k]);  // y^in, y^out
        const T* __restrict s_prev = tp.Ss + (t * B + b) * C;
        T* __restrict s = tp.Ss + ((t + 1) * B + b) * C;
        T* __restrict g = tp.g_buf + (t * B + b) * C;
        T* __restrict h = tp.h_buf + (t * B + b) * C;
        T* __restrict y = tp.Ys + ((t + 1) * B + b) * Y;
        for (i64 c = 0; c < C; ++c) {
          const i64 j = c / S;
          g[c] = fm::squash(tp.g, a[gK + c]);
          s[c] = s_prev[c] + a[j] * g[c];  // the carousel: s_c += y^in g(net_c)
          h[c] = fm::squash(tp.h, s[c]);
          y[c] = tp.output_gate ? a[K + j] * h[c] : h[c];  // y^c = y^out h(s_c)
        }
        if (tp.gate_recurrence) std::copy(a, a + gK, y + C);
      }
    }
  });
}

template <typename T>
void lstm1997_backward(const LSTM1997Tape<T>& tp, bool truncated, const T* d_out,
                       const T* d_y, const T* d_s, T* dG, T* dy0, T* ds0, int threads,
                       const Fused<T>* fused) {
  const i64 TT = tp.steps, B = tp.B, K = tp.K, S = tp.S, C = K * S;
  const i64 gK = (tp.output_gate ? 2 : 1) * K, R = gK + C;
  const i64 Y = C + (tp.gate_recurrence ? gK : 0);
  const i64* bs = tp.batch_sizes;
  const bool back_in_time = tp.W_hh && !truncated;
  PackedB<T> W;
  if (back_in_time) W.pack(false, R, Y, tp.W_hh, Y);
  for_rows(B, threads, 4, [&](Rows rows) {
    const i64 n0 = rows.count(B), b0 = rows.first, st = rows.stride;
    std::vector<T> dy(n0 * Y, T(0)), ds(n0 * C, T(0));
    // fused: δa of this step's rows (instead of dG) and this thread's gradient sums
    std::vector<T> dA_rows(fused ? n0 * R : 0);
    std::optional<FusedSum<T>> sums;
    if (fused) sums.emplace(*fused);
    if (!bs)
      for (i64 r = 0; r < n0; ++r) {
        std::copy(d_y + rows.row(r) * Y, d_y + (rows.row(r) + 1) * Y, dy.data() + r * Y);
        std::copy(d_s + rows.row(r) * C, d_s + (rows.row(r) + 1) * C, ds.data() + r * C);
      }
    for (i64 t = TT - 1; t >= 0; --t) {
      const i64 n = rows.count(running(bs, B, t));
      if (n == 0) continue;
      const i64 last = ending(bs, TT, t);
      for (i64 r = 0; r < n; ++r) {
        const i64 b = rows.row(r);
        T* __restrict dyr = dy.data() + r * Y;
        T* __restrict dsr = ds.data() + r * C;
        if (bs && b >= last) {  // sequence b ends at t: its final-state gradient enters
          for (i64 k = 0; k < Y; ++k) dyr[k] += d_y[b * Y + k];
          for (i64 c = 0; c < C; ++c) dsr[c] += d_s[b * C + c];
        }
        const T* __restrict dout = d_out + (t * B + b) * Y;
        for (i64 k = 0; k < Y; ++k) dyr[k] += dout[k];
        const T* __restrict a = tp.xw + (t * B + b) * R;  // gate activations, then net_c
        const T* __restrict g = tp.g_buf + (t * B + b) * C;
        const T* __restrict h = tp.h_buf + (t * B + b) * C;
        T* __restrict dA = fused ? dA_rows.data() + r * R : dG + (t * B + b) * R;
        for (i64 k = 0; k < gK; ++k) dA[k] = T(0);
        for (i64 c = 0; c < C; ++c) {
          const i64 j = c / S;
          const T dyc = dyr[c];
          if (tp.output_gate) {  // undoes y^c = y^out h(s_c)
            dA[K + j] += dyc * h[c];
            dsr[c] += dyc * a[K + j] * fm::squash_prime(tp.h, h[c]);
          } else {  // undoes y^c = h(s_c)
            dsr[c] += dyc * fm::squash_prime(tp.h, h[c]);
          }
          // undoes s_c += y^in g(net_c)
          dA[gK + c] = dsr[c] * a[j] * fm::squash_prime(tp.g, g[c]);
          dA[j] += dsr[c] * g[c];
        }
        for (i64 k = 0; k < gK; ++k) {
          if (tp.gate_recurrence) dA[k] += dyr[C + k];  // the gates as sources of step t+1
          dA[k] *= a[k] * (T(1) - a[k]);  // undoes the gates' squashing
        }
        // δs_c(t−1) = δs_c(t): the carousel, nothing to do
      }
      const T* dA = fused ? dA_rows.data() : dG + (t * B + b0) * R;
      const i64 lda = fused ? R : st * R;
      if (fused)
        sums->add(n, dA, fused->x + (t * B + b0) * fused->I, st * fused->I,
                  tp.Ys + (t * B + b0) * Y, st * Y,
                  fused->dx ? fused->dx + (t * B + b0) * fused->I : nullptr, st * fused->I);
      if (back_in_time)  // undoes net += W_rec y(t−1)
        gemm<T>(false, n, dA, lda, W, T(0), dy.data(), Y);
      else  // the 1997 truncation: no error flows back through net_*
        std::fill(dy.begin(), dy.begin() + n * Y, T(0));
    }
    for (i64 r = 0; r < n0; ++r) {
      std::copy(dy.data() + r * Y, dy.data() + (r + 1) * Y, dy0 + rows.row(r) * Y);
      std::copy(ds.data() + r * C, ds.data() + (r + 1) * C, ds0 + rows.row(r) * C);
    }
    if (fused) sums->merge();
  });
}

template void lstm1997_forward<float>(const LSTM1997Tape<float>&, int);
template void lstm1997_forward<double>(const LSTM1997Tape<double>&, int);
template void lstm1997_backward<float>(const LSTM1997Tape<float>&, bool, const float*,
                                       const float*, const float*, float*, float*, float*,
                                       int, const Fused<float>*);
template void lstm1997_backward<double>(const LSTM1997Tape<double>&, bool, const double*,
                                        const double*, const double*, double*, double*,
                                        double*, int, const Fused<double>*);

}  // namespace rnnlab
