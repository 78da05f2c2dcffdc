// The on-line learner with trials as vector lanes: the same rule as online1997.cpp (and
// rnnlab/online.py, which states the equations), but L trials at once — every weight, state
// and trace is stored as L consecutive numbers, one per trial, so each line of the rule is one
// vector operation for L networks. Trials are independent; lanes never mix.
//
// Sparse inputs across lanes: a step touches the columns of u = [x, y(t−1), 1] that are
// nonzero in some lane (one-hot inputs: at most one per lane); lanes where a touched column is
// zero add exact zeros. Sequences of different lengths run to the longest: a lane past its own
// end reads no input, writes no output and has no target, so its weights do not change
// (its activations after the end are never used: every sequence starts from zero).
//
// A lane's arithmetic must not depend on its neighbours (a trial replayed alone has to
// compute what it computed in a group). Where the compiler fuses a multiply-add on its own can
// depend on a loop's length — here the number of columns the lanes touch — so every
// multiply-add inside such a loop is fused explicitly (std::fma).

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "online1997.h"

namespace rnnlab {
namespace {

using fm::sigmoid;
using fm::squash_prime;

#define LANES for (int l = 0; l < L; ++l)

// inputs up to this many, given dense, are all taken as touched columns (no search for zeros)
constexpr i64 kDenseInputs = 16;

// net = Σ_col w[col] ⊙ u[col] over the touched columns, for L lanes (w: one weight row,
// column-major by lane). Fused multiply-adds in column order: a lane's sum never depends on
// which columns its neighbours touched.
template <typename T, int L>
RNNLAB_INLINE void lane_dot(const T* __restrict w, const T* __restrict u,
                            const std::vector<int>& cols, T* __restrict net) {
  std::fill(net, net + L, T(0));
  for (const int col : cols) {
    const T* wc = w + col * L;
    const T* uc = u + col * L;
#pragma omp simd
    for (int l = 0; l < L; ++l) net[l] = std::fma(wc[l], uc[l], net[l]);
  }
}

#if defined(__AVX512F__)
// The same sums for a full 64-byte register of lanes, written out: left to itself GCC pairs
// the columns and loads the second one's lanes by a gather, which cost more than the rest of
// a step. _mm512_fmadd is std::fma lane by lane (one rounding), so the values are the same.
template <>
RNNLAB_INLINE void lane_dot<float, 16>(const float* __restrict w, const float* __restrict u,
                                       const std::vector<int>& cols, float* __restrict net) {
  __m512 acc = _mm512_setzero_ps();
  for (const int col : cols)
    acc = _mm512_fmadd_ps(_mm512_loadu_ps(w + col * 16), _mm512_loadu_ps(u + col * 16), acc);
  _mm512_storeu_ps(net, acc);
}

template <>
RNNLAB_INLINE void lane_dot<double, 8>(const double* __restrict w, const double* __restrict u,
                                       const std::vector<int>& cols, double* __restrict net) {
  __m512d acc = _mm512_setzero_pd();
  for (const int col : cols)
    acc = _mm512_fmadd_pd(_mm512_loadu_pd(w + col * 8), _mm512_loadu_pd(u + col * 8), acc);
  _mm512_storeu_pd(net, acc);
}
#endif

// y ← squash(a), y ← squash'(y) for L lanes: the kind is chosen once, outside the lane loop,
// so the loop is one vectorised formula
template <typename T, int L>
RNNLAB_INLINE void squash_lanes(int kind, const T* __restrict a, T* __restrict y) {
  switch (kind) {
    case fm::kG2:
#pragma omp simd
      for (int l = 0; l < L; ++l) y[l] = sigmoid(a[l]) * T(4) - T(2);
      break;
    case fm::kH1:
#pragma omp simd
      for (int l = 0; l < L; ++l) y[l] = sigmoid(a[l]) * T(2) - T(1);
      break;
    case fm::kLogistic:
#pragma omp simd
      for (int l = 0; l < L; ++l) y[l] = sigmoid(a[l]);
      break;
    case fm::kTanh:
#pragma omp simd
      for (int l = 0; l < L; ++l) y[l] = fm::tanh(a[l]);
      break;
    default:
      for (int l = 0; l < L; ++l) y[l] = a[l];
  }
}

template <typename T, int L>
RNNLAB_INLINE void squash_prime_lanes(int kind, const T* __restrict y, T* __restrict out) {
  switch (kind) {
    case fm::kG2:
#pragma omp simd
      for (int l = 0; l < L; ++l) out[l] = squash_prime(fm::kG2, y[l]);
      break;
    case fm::kH1:
#pragma omp simd
      for (int l = 0; l < L; ++l) out[l] = squash_prime(fm::kH1, y[l]);
      break;
    case fm::kLogistic:
#pragma omp simd
      for (int l = 0; l < L; ++l) out[l] = squash_prime(fm::kLogistic, y[l]);
      break;
    case fm::kTanh:
#pragma omp simd
      for (int l = 0; l < L; ++l) out[l] = squash_prime(fm::kTanh, y[l]);
      break;
    default:
      for (int l = 0; l < L; ++l) out[l] = T(1);
  }
}

template <typename T, int L>
struct Group {  // L trials n0 … n0 + L − 1 (the last ones may be padding)
  const OnlineDims& d;
  i64 n0;
  int live;  // trials in this group that exist
  i64 C, gK, R, Y, M, Z;

  Group(const OnlineDims& d_, i64 n0_)
      : d(d_), n0(n0_), live(int(std::min<i64>(L, d_.N - n0_))) {
    C = d.K * d.BS;
    gK = (d.output_gate ? 2 : 1) * d.K;
    R = gK + C;
    Y = C + (d.gate_recurrence ? gK : 0);
    M = d.I + Y + 1;
    Z = C + (d.sees_input ? d.I : 0) + 1;
  }

  // (N, rows, cols) of the caller ↔ (rows·cols, L) of the group
  void gather(const T* src, i64 size, std::vector<T>& dst) const {
    dst.assign(size * L, T(0));
    for (int l = 0; l < live; ++l)
      for (i64 k = 0; k < size; ++k) dst[k * L + l] = src[(n0 + l) * size + k];
  }
  void scatter(const std::vector<T>& src, i64 size, T* dst) const {
    for (int l = 0; l < live; ++l)
      for (i64 k = 0; k < size; ++k) dst[(n0 + l) * size + k] = src[k * L + l];
  }

  void run(T* W_out, T* V_out, const T* W_mask, const T* V_mask, const T* x,
           const int64_t* symbols, const T* targets, const T* mask,
           const uint8_t* target_steps, const int64_t* lengths, const T* lr_in, T* outputs,
           T* grad_W, T* grad_V) {
    const i64 N = d.N, B = d.B, I = d.I, K = d.K, BS = d.BS, O = d.O;
    std::vector<T> W, V, Wm, Vm, gW_sum, gV_sum;
    gather(W_out, R * M, W);
    gather(V_out, O * Z, V);
    gather(W_mask, R * M, Wm);
    gather(V_mask, O * Z, Vm);
    gather(grad_W, R * M, gW_sum);
    gather(grad_V, O * Z, gV_sum);
    alignas(64) T lr[L];
    LANES lr[l] = l < live ? lr_in[n0 + l] : T(0);

    std::vector<T> y(B * Y * L), s(B * C * L), trc, tri;
    if (d.need_grad) {
      trc.resize(B * C * M * L);
      tri.resize(B * C * M * L);
    }
    std::vector<T> gates(B * gK * L), hs(B * C * L), out(B * O * L);
    std::vector<T> uval(B * M * L), zval(B * Z * L);  // the touched columns' values
    std::vector<std::vector<int>> ucols(B), zcols(B);
    for (auto& v : ucols) v.reserve(M);
    for (auto& v : zcols) v.reserve(Z);
    std::vector<uint8_t> seen(std::max(M, Z), 0);
    std::vector<T> gW(R * M * L), gV(O * Z * L, T(0)), batch_gW, batch_gV;
    if (d.update == 2) {
      batch_gW.resize(R * M * L);
      batch_gV.resize(O * Z * L);
    }
    std::vector<uint8_t> touched(Z, 0);
    const bool dense = x && I <= kDenseInputs;
    std::vector<i64> lane_len(B * L);
    std::vector<T> x_lanes(dense ? d.T * B * I * L : 0, T(0));
    std::vector<int> touched_cols;
    alignas(64) T net[L], a_c[L], a_in[L], e[L], dl[L];
    std::vector<T> delta(O * L), e_s(C * L);

    for (i64 sq = 0; sq < d.S; ++sq) {
      std::fill(y.begin(), y.end(), T(0));
      std::fill(s.begin(), s.end(), T(0));
      std::fill(trc.begin(), trc.end(), T(0));
      std::fill(tri.begin(), tri.end(), T(0));
      std::fill(batch_gW.begin(), batch_gW.end(), T(0));
      std::fill(batch_gV.begin(), batch_gV.end(), T(0));
      // this batch's lengths and (a few dense) inputs in lane order, read once here: read
      // lane by lane at every step, they were strided gathers, the step's costliest part
      i64 steps = 0;
      for (i64 b = 0; b < B; ++b)
        for (int l = 0; l < L; ++l) {
          lane_len[b * L + l] = l < live ? lengths[(sq * N + n0 + l) * B + b] : 0;
          steps = std::max(steps, lane_len[b * L + l]);
        }
      if (dense)
        for (i64 t = 0; t < steps; ++t)
          for (int l = 0; l < live; ++l)
            for (i64 b = 0; b < B; ++b) {
              const T* xt = x + (((sq * d.T + t) * N + n0 + l) * B + b) * I;
              for (i64 i = 0; i < I; ++i) x_lanes[((t * B + b) * I + i) * L + l] = xt[i];
            }
      for (i64 t = 0; t < steps; ++t) {
        const bool target = d.has_targets && target_steps[sq * d.T + t];
        const bool readout = d.outputs_all || target;
        for (i64 b = 0; b < B; ++b) {
          auto row = [&](int l) { return ((sq * d.T + t) * N + n0 + l) * B + b; };
          const i64* len_b = lane_len.data() + b * L;
          auto running = [&](int l) { return t < len_b[l]; };
          T* ub = uval.data() + b * M * L;
          std::vector<int>& uc = ucols[b];
          uc.clear();
          // u = [x(t), y(t−1), 1]: the input columns nonzero in some lane, then all of y, 1
          auto touch = [&](int col) {
            if (!seen[col]) {
              seen[col] = 1;
              uc.push_back(col);
              std::fill(ub + col * L, ub + (col + 1) * L, T(0));
            }
          };
          bool on[L];
          for (int l = 0; l < L; ++l) on[l] = running(l);
          if (dense) {  // a few dense inputs: every column, no search
            const T* xl = x_lanes.data() + (t * B + b) * I * L;
            for (i64 i = 0; i < I; ++i) {
              uc.push_back(int(i));
#pragma omp simd
              for (int l = 0; l < L; ++l) ub[i * L + l] = on[l] ? xl[i * L + l] : T(0);
            }
          } else {
            for (int l = 0; l < L; ++l) {
              if (!on[l]) continue;
              if (x) {
                const T* xt = x + row(l) * I;
                for (i64 i = 0; i < I; ++i)
                  if (xt[i] != T(0)) {
                    touch(int(i));
                    ub[i * L + l] = xt[i];
                  }
              } else if (const int64_t sym = symbols[row(l)]; sym >= 0) {
                touch(int(sym));
                ub[sym * L + l] = T(1);
              }
            }
            for (const int col : uc) seen[col] = 0;
          }
          T* yb = y.data() + b * Y * L;
          for (i64 k = 0; k < Y; ++k) {
            uc.push_back(int(I + k));
            std::copy(yb + k * L, yb + (k + 1) * L, ub + (I + k) * L);
          }
          uc.push_back(int(M - 1));
          std::fill(ub + (M - 1) * L, ub + M * L, T(1));

          T* gb = gates.data() + b * gK * L;
          T* sb = s.data() + b * C * L;
          T* hb = hs.data() + b * C * L;
          // net = W u, gates = σ(net)
          for (i64 r = 0; r < gK; ++r) {
            lane_dot<T, L>(W.data() + r * M * L, ub, uc, net);
            T* g = gb + r * L;
#pragma omp simd
            for (int l = 0; l < L; ++l) g[l] = sigmoid(net[l]);
          }
          for (i64 c = 0; c < C; ++c) {
            const i64 j = c / BS;
            lane_dot<T, L>(W.data() + (gK + c) * M * L, ub, uc, net);
            const T* y_in = gb + j * L;
            const T* y_out = gb + (K + j) * L;
            T* sc = sb + c * L;
            T* hc = hb + c * L;
            T* yc = yb + c * L;  // y(t) replaces y(t−1): u holds the old values
            alignas(64) T gc[L], gp[L];
            squash_lanes<T, L>(d.g, net, gc);
#pragma omp simd
            for (int l = 0; l < L; ++l) sc[l] += y_in[l] * gc[l];  // the carousel
            squash_lanes<T, L>(d.h, sc, hc);
            squash_prime_lanes<T, L>(d.g, gc, gp);
#pragma omp simd
            for (int l = 0; l < L; ++l) {
              yc[l] = d.output_gate ? y_out[l] * hc[l] : hc[l];
              a_c[l] = y_in[l] * gp[l];
              a_in[l] = gc[l] * (y_in[l] * (T(1) - y_in[l]));
            }
            if (!d.need_grad) continue;
            T* tc = trc.data() + (b * C + c) * M * L;
            T* ti = tri.data() + (b * C + c) * M * L;
            for (const int col : uc) {  // the traces, carried forward
              const T* u = ub + col * L;
              T* pc = tc + col * L;
              T* pi = ti + col * L;
#pragma omp simd
              for (int l = 0; l < L; ++l) {
                pc[l] = std::fma(a_c[l], u[l], pc[l]);
                pi[l] = std::fma(a_in[l], u[l], pi[l]);
              }
            }
          }
          if (d.gate_recurrence) std::copy(gb, gb + gK * L, yb + C * L);
          if (!readout) continue;
          // z = [y^c, (x), 1]; out = σ(V z)
          T* zb = zval.data() + b * Z * L;
          std::vector<int>& zc = zcols[b];
          zc.clear();
          for (i64 c = 0; c < C; ++c) {
            zc.push_back(int(c));
            std::copy(yb + c * L, yb + (c + 1) * L, zb + c * L);
          }
          if (d.sees_input)
            for (const int col : uc) {
              if (col >= I) break;  // the input columns come first in uc
              zc.push_back(int(C + col));
              std::copy(ub + col * L, ub + (col + 1) * L, zb + (C + col) * L);
            }
          zc.push_back(int(Z - 1));
          std::fill(zb + (Z - 1) * L, zb + Z * L, T(1));
          T* ob = out.data() + b * O * L;
          for (i64 o = 0; o < O; ++o) {
            lane_dot<T, L>(V.data() + o * Z * L, zb, zc, net);
            T* oo = ob + o * L;
#pragma omp simd
            for (int l = 0; l < L; ++l) oo[l] = d.linear_output ? net[l] : sigmoid(net[l]);
            for (int l = 0; l < L; ++l)
              if (on[l]) outputs[row(l) * O + o] = oo[l];
          }
        }
        if (!target || !d.need_grad) continue;

        // the error and the gradient of this step, summed over the B sequences
        std::fill(gW.begin(), gW.end(), T(0));
        touched_cols.clear();
        for (i64 b = 0; b < B; ++b) {
          const i64 row0 = ((sq * d.T + t) * N + n0) * B + b;
          alignas(64) T m[L];
          for (int l = 0; l < L; ++l)
            m[l] = t < lane_len[b * L + l] ? mask[row0 + l * B] : T(0);
          const T* ob = out.data() + b * O * L;
          for (i64 o = 0; o < O; ++o) {
            alignas(64) T tg[L];
            for (int l = 0; l < L; ++l)
              tg[l] = m[l] != T(0) ? targets[(row0 + l * B) * O + o] : ob[o * L + l];
            const T* oo = ob + o * L;
            T* dd = delta.data() + o * L;
#pragma omp simd
            for (int l = 0; l < L; ++l)
              dd[l] = d.cross_entropy || d.linear_output ? (oo[l] - tg[l]) * m[l]
                                      : (oo[l] - tg[l]) * oo[l] * (T(1) - oo[l]) * m[l];
          }
          // ∂E/∂V = δ zᵀ on the columns z touched
          const T* zb = zval.data() + b * Z * L;
          for (const int col : zcols[b]) {
            if (!touched[col]) {
              touched[col] = 1;
              touched_cols.push_back(col);
              for (i64 o = 0; o < O; ++o)
                std::fill(gV.begin() + (o * Z + col) * L, gV.begin() + (o * Z + col + 1) * L,
                          T(0));
            }
            const T* z = zb + col * L;
            for (i64 o = 0; o < O; ++o) {
              T* g = gV.data() + (o * Z + col) * L;
              const T* dd = delta.data() + o * L;
#pragma omp simd
              for (int l = 0; l < L; ++l) g[l] = std::fma(dd[l], z[l], g[l]);
            }
          }
          const T* gb = gates.data() + b * gK * L;
          const T* hb = hs.data() + b * C * L;
          const T* ub = uval.data() + b * M * L;
          for (i64 c = 0; c < C; ++c) {  // e_c = Σ_k w_kc δ_k
            std::fill(e, e + L, T(0));
            for (i64 o = 0; o < O; ++o) {
              const T* v = V.data() + (o * Z + c) * L;
              const T* dd = delta.data() + o * L;
#pragma omp simd
              for (int l = 0; l < L; ++l) e[l] = std::fma(dd[l], v[l], e[l]);
            }
            std::copy(e, e + L, e_s.data() + c * L);
          }
          if (d.output_gate)
            for (i64 j = 0; j < K; ++j) {  // output gates: this step only
              std::fill(dl, dl + L, T(0));
              for (i64 c = j * BS; c < (j + 1) * BS; ++c) {
                const T* ec = e_s.data() + c * L;
                const T* hc = hb + c * L;
#pragma omp simd
                for (int l = 0; l < L; ++l) dl[l] = std::fma(ec[l], hc[l], dl[l]);
              }
              const T* yo = gb + (K + j) * L;
#pragma omp simd
              for (int l = 0; l < L; ++l) dl[l] = dl[l] * yo[l] * (T(1) - yo[l]);
              for (const int col : ucols[b]) {
                T* g = gW.data() + ((K + j) * M + col) * L;
                const T* u = ub + col * L;
#pragma omp simd
                for (int l = 0; l < L; ++l) g[l] = std::fma(dl[l], u[l], g[l]);
              }
            }
          for (i64 c = 0; c < C; ++c) {  // e_s = e_c y^out h'(s_c)
            T* ec = e_s.data() + c * L;
            const T* yo = gb + (K + c / BS) * L;
            alignas(64) T hp[L];
            squash_prime_lanes<T, L>(d.h, hb + c * L, hp);
#pragma omp simd
            for (int l = 0; l < L; ++l)
              ec[l] = d.output_gate ? ec[l] * yo[l] * hp[l] : ec[l] * hp[l];
          }
          for (i64 c = 0; c < C; ++c) {  // cells and input gates, through the traces
            const T* ec = e_s.data() + c * L;
            const T* tc = trc.data() + (b * C + c) * M * L;
            const T* ti = tri.data() + (b * C + c) * M * L;
            T* row_c = gW.data() + (gK + c) * M * L;
            T* row_in = gW.data() + (c / BS) * M * L;
            for (i64 k = 0; k < M; ++k) {
#pragma omp simd
              for (int l = 0; l < L; ++l) {
                row_c[k * L + l] = std::fma(ec[l], tc[k * L + l], row_c[k * L + l]);
                row_in[k * L + l] = std::fma(ec[l], ti[k * L + l], row_in[k * L + l]);
              }
            }
          }
        }
        // only existing connections learn; sum; and (on-line) change the weights now
        for (i64 k = 0; k < R * M; ++k) {
#pragma omp simd
          for (int l = 0; l < L; ++l) {
            const T g = gW[k * L + l] * Wm[k * L + l];
            gW_sum[k * L + l] += g;
            if (d.update == 1) W[k * L + l] = std::fma(-g, lr[l], W[k * L + l]);
            if (d.update == 2) batch_gW[k * L + l] += g;
          }
        }
        for (const int col : touched_cols) {
          touched[col] = 0;
          for (i64 o = 0; o < O; ++o) {
            const i64 k = o * Z + col;
#pragma omp simd
            for (int l = 0; l < L; ++l) {
              const T g = gV[k * L + l] * Vm[k * L + l];
              gV_sum[k * L + l] += g;
              if (d.update == 1) V[k * L + l] = std::fma(-g, lr[l], V[k * L + l]);
              if (d.update == 2) batch_gV[k * L + l] += g;
            }
          }
        }
      }
      if (d.update == 2) {  // once per batch, with the batch's own gradient
        for (i64 k = 0; k < R * M; ++k)
          LANES W[k * L + l] = std::fma(-batch_gW[k * L + l], lr[l], W[k * L + l]);
        for (i64 k = 0; k < O * Z; ++k)
          LANES V[k * L + l] = std::fma(-batch_gV[k * L + l], lr[l], V[k * L + l]);
      }
    }
    scatter(W, R * M, W_out);
    scatter(V, O * Z, V_out);
    scatter(gW_sum, R * M, grad_W);
    scatter(gV_sum, O * Z, grad_V);
  }
};

}  // namespace

template <typename T, int L>
void run_groups(const OnlineDims& d, T* W, T* V, const T* W_mask, const T* V_mask, const T* x,
                const int64_t* symbols, const T* targets, const T* mask,
                const uint8_t* target_steps, const int64_t* lengths, const T* lr, T* outputs,
                T* grad_W, T* grad_V, int threads) {
  const i64 groups = (d.N + L - 1) / L;
  const int nt = int(std::max<i64>(1, std::min<i64>(threads, groups)));
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
  for (i64 k = 0; k < groups; ++k)
    Group<T, L>(d, k * L).run(W, V, W_mask, V_mask, x, symbols, targets, mask, target_steps,
                              lengths, lr, outputs, grad_W, grad_V);
}

template <typename T>
void online1997_lanes(const OnlineDims& d, T* W, T* V, const T* W_mask, const T* V_mask,
                      const T* x, const int64_t* symbols, const T* targets, const T* mask,
                      const uint8_t* target_steps, const int64_t* lengths, const T* lr,
                      T* outputs, T* grad_W, T* grad_V, int threads) {
  // groups of one 64-byte register of trials (16 floats, 8 doubles), or of 16 bytes when
  // there are few trials. A lane's arithmetic does not depend on the group's width, so a
  // trial replayed alone (the paper protocol's exact stop) computes what it did in a group.
  constexpr int wide = 64 / sizeof(T), narrow = 16 / sizeof(T);
  if (d.N > narrow)
    run_groups<T, wide>(d, W, V, W_mask, V_mask, x, symbols, targets, mask, target_steps,
                        lengths, lr, outputs, grad_W, grad_V, threads);
  else
    run_groups<T, narrow>(d, W, V, W_mask, V_mask, x, symbols, targets, mask, target_steps,
                          lengths, lr, outputs, grad_W, grad_V, threads);
}

#define RNNLAB_LANES(T)                                                                      \
  template void online1997_lanes<T>(const OnlineDims&, T*, T*, const T*, const T*, const T*, \
                                    const int64_t*, const T*, const T*, const uint8_t*,      \
                                    const int64_t*, const T*, T*, T*, T*, int);
RNNLAB_LANES(float)
RNNLAB_LANES(double)

}  // namespace rnnlab
