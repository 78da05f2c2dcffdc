// The 1997 on-line learner, compiled. Same rule as rnnlab/online.py, which states the
// equations; the comments here name the Python line each block computes.
//
// Trials are independent networks, so they run one after another (or on separate threads);
// inside a trial the loop is the paper's: forward step, traces, and at a target step the
// error, the gradient and (update == 1) the weight change, before the next step.
//
// Inputs of the 1997 tasks are mostly one-hot, so the sources u = [x, y(t−1), 1] and the
// readout's z = [y^c, (x), 1] are kept as lists of their nonzero entries: W u, the trace
// updates and the output units' gradient touch those columns only. Skipping exact zeros
// changes no value; it makes a step of task 2c (1,000+ inputs) cost as much as one of the
// adding problem (2 inputs).
#include "online1997.h"

#include <omp.h>

#include <algorithm>
#include <vector>

namespace rnnlab {
namespace {

using fm::sigmoid;
using fm::squash;
using fm::squash_prime;

template <typename T>
struct Sparse {  // the nonzero entries of a vector: index and value
  std::vector<int> idx;
  std::vector<T> val;
  i64 n = 0;
  void resize(i64 size) { idx.resize(size); val.resize(size); }
  void push(int i, T v) { idx[n] = i; val[n] = v; ++n; }
};

template <typename T>
void run_trial(const OnlineDims& d, i64 n, T* W, T* V, const T* W_mask, const T* V_mask,
               const T* x, const int64_t* symbols, const T* targets, const T* mask,
               const uint8_t* target_steps, const int64_t* lengths, T lr, T* outputs,
               T* grad_W, T* grad_V) {
  const i64 N = d.N, B = d.B, I = d.I, K = d.K, BS = d.BS, O = d.O;
  const i64 C = K * BS, gK = (d.output_gate ? 2 : 1) * K, R = gK + C;
  const i64 Y = C + (d.gate_recurrence ? gK : 0), M = I + Y + 1;
  const i64 Z = C + (d.sees_input ? I : 0) + 1;
  W += n * R * M;
  V += n * O * Z;
  W_mask += n * R * M;
  V_mask += n * O * Z;
  grad_W += n * R * M;
  grad_V += n * O * Z;

  // state of the B sequences: y(t−1), s, and the traces ∂s_c/∂w_{c,·}, ∂s_c/∂w_{in_j,·}
  std::vector<T> y(B * Y), s(B * C);
  std::vector<T> trace_c(d.need_grad ? B * C * M : 0), trace_in(d.need_grad ? B * C * M : 0);
  // this step's values, kept for the gradient
  std::vector<T> gates(B * gK), hs(B * C), y_c(B * C), out(B * O), net(R);
  std::vector<Sparse<T>> u(B), z(B);
  for (auto& v : u) v.resize(M);
  for (auto& v : z) v.resize(Z);
  // one step's gradient; gV only on the columns some z touched
  std::vector<T> gW(R * M), gV(O * Z, T(0)), delta(O), e_c(C), e_s(C);
  std::vector<uint8_t> touched(Z, 0);
  std::vector<int> touched_cols;
  touched_cols.reserve(Z);
  // update == 2: the gradient of the current batch, applied at its end
  std::vector<T> batch_gW(d.update == 2 ? R * M : 0), batch_gV(d.update == 2 ? O * Z : 0);

  for (i64 sq = 0; sq < d.S; ++sq) {
    // every batch starts from zero activations and zero traces (the paper resets after
    // each sequence)
    std::fill(y.begin(), y.end(), T(0));
    std::fill(s.begin(), s.end(), T(0));
    std::fill(trace_c.begin(), trace_c.end(), T(0));
    std::fill(trace_in.begin(), trace_in.end(), T(0));
    std::fill(batch_gW.begin(), batch_gW.end(), T(0));
    std::fill(batch_gV.begin(), batch_gV.end(), T(0));
    const int64_t* len = lengths + (sq * N + n) * B;
    const i64 steps = *std::max_element(len, len + B);
    for (i64 t = 0; t < steps; ++t) {
      const i64 row0 = ((sq * d.T + t) * N + n) * B;  // (sq, t, n, b = 0)
      const bool target = d.has_targets && target_steps[sq * d.T + t];
      const bool readout = d.outputs_all || target;
      for (i64 b = 0; b < B; ++b) {
        if (t >= len[b]) continue;  // this sequence has ended
        const i64 row = row0 + b;
        const T* xt = x ? x + row * I : nullptr;
        const int64_t sym = x ? -1 : symbols[row];
        T* yb = y.data() + b * Y;
        // u = [x(t), y(t−1), 1]: the sources
        Sparse<T>& ub = u[b];
        ub.n = 0;
        if (xt) {
          for (i64 i = 0; i < I; ++i)
            if (xt[i] != T(0)) ub.push(int(i), xt[i]);
        } else if (sym >= 0) {
          ub.push(int(sym), T(1));
        }
        for (i64 k = 0; k < Y; ++k)
          if (yb[k] != T(0)) ub.push(int(I + k), yb[k]);
        ub.push(int(M - 1), T(1));
        // net = W u
        for (i64 r = 0; r < R; ++r) {
          const T* w = W + r * M;
          T a = T(0);
          for (i64 q = 0; q < ub.n; ++q) a += w[ub.idx[q]] * ub.val[q];
          net[r] = a;
        }
        T* gb = gates.data() + b * gK;
        for (i64 r = 0; r < gK; ++r) gb[r] = sigmoid(net[r]);  // y^in, y^out
        T* sb = s.data() + b * C;
        T* hb = hs.data() + b * C;
        T* ycb = y_c.data() + b * C;
        for (i64 c = 0; c < C; ++c) {
          const i64 j = c / BS;
          const T y_in = gb[j];
          const T gc = squash(d.g, net[gK + c]);
          sb[c] += y_in * gc;  // the carousel: s_c += y^in g(net_c)
          const T h = squash(d.h, sb[c]);
          hb[c] = h;
          ycb[c] = d.output_gate ? gb[K + j] * h : h;  // y^c = y^out h(s_c)
          if (!d.need_grad) continue;
          // the traces, carried forward
          const T a_c = y_in * squash_prime(d.g, gc);
          const T a_in = gc * (y_in * (T(1) - y_in));
          T* tc = trace_c.data() + (b * C + c) * M;
          T* ti = trace_in.data() + (b * C + c) * M;
          for (i64 q = 0; q < ub.n; ++q) {
            tc[ub.idx[q]] += a_c * ub.val[q];
            ti[ub.idx[q]] += a_in * ub.val[q];
          }
        }
        // y(t) = [y^c, gates]: what the units see at the next step
        std::copy(ycb, ycb + C, yb);
        if (d.gate_recurrence) std::copy(gb, gb + gK, yb + C);
        if (!readout) continue;
        // z = [y^c, (x), 1]; out = σ(V z)
        Sparse<T>& zb = z[b];
        zb.n = 0;
        for (i64 c = 0; c < C; ++c)
          if (ycb[c] != T(0)) zb.push(int(c), ycb[c]);
        if (d.sees_input) {
          if (xt) {
            for (i64 i = 0; i < I; ++i)
              if (xt[i] != T(0)) zb.push(int(C + i), xt[i]);
          } else if (sym >= 0) {
            zb.push(int(C + sym), T(1));
          }
        }
        zb.push(int(Z - 1), T(1));
        T* ob = out.data() + b * O;
        T* dest = outputs + row * O;
        for (i64 o = 0; o < O; ++o) {
          const T* v = V + o * Z;
          T a = T(0);
          for (i64 q = 0; q < zb.n; ++q) a += v[zb.idx[q]] * zb.val[q];
          ob[o] = dest[o] = sigmoid(a);
        }
      }
      if (!target || !d.need_grad) continue;

      // the error and the gradient of this step, summed over the B sequences
      std::fill(gW.begin(), gW.end(), T(0));
      touched_cols.clear();
      for (i64 b = 0; b < B; ++b) {
        if (t >= len[b]) continue;
        const T m = mask[row0 + b];
        if (m == T(0)) continue;
        const T* tg = targets + (row0 + b) * O;
        const T* ob = out.data() + b * O;
        // δ_k = ∂E/∂net_k: ½ (y − t)² gives (y − t) f'(net); cross-entropy gives (y − t)
        for (i64 o = 0; o < O; ++o)
          delta[o] = d.cross_entropy ? (ob[o] - tg[o]) * m
                                     : (ob[o] - tg[o]) * ob[o] * (T(1) - ob[o]) * m;
        // ∂E/∂V = δ zᵀ
        const Sparse<T>& zb = z[b];
        for (i64 q = 0; q < zb.n; ++q) {
          const int col = zb.idx[q];
          if (!touched[col]) {
            touched[col] = 1;
            touched_cols.push_back(col);
            for (i64 o = 0; o < O; ++o) gV[o * Z + col] = T(0);
          }
          for (i64 o = 0; o < O; ++o) gV[o * Z + col] += delta[o] * zb.val[q];
        }
        // e_c = Σ_k w_kc δ_k: the error at the cell outputs
        for (i64 c = 0; c < C; ++c) {
          T a = T(0);
          for (i64 o = 0; o < O; ++o) a += delta[o] * V[o * Z + c];
          e_c[c] = a;
        }
        const T* gb = gates.data() + b * gK;
        const T* hb = hs.data() + b * C;
        const Sparse<T>& ub = u[b];
        if (d.output_gate) {
          // output gates: this step only, δ_out_j = Σ_{c∈j} e_c h(s_c) f'(net_out_j)
          for (i64 j = 0; j < K; ++j) {
            T a = T(0);
            for (i64 c = j * BS; c < (j + 1) * BS; ++c) a += e_c[c] * hb[c];
            const T y_out = gb[K + j];
            const T d_out = a * y_out * (T(1) - y_out);
            T* row = gW.data() + (K + j) * M;
            for (i64 q = 0; q < ub.n; ++q) row[ub.idx[q]] += d_out * ub.val[q];
          }
          for (i64 c = 0; c < C; ++c)
            e_s[c] = e_c[c] * gb[K + c / BS] * squash_prime(d.h, hb[c]);
        } else {
          for (i64 c = 0; c < C; ++c) e_s[c] = e_c[c] * squash_prime(d.h, hb[c]);
        }
        // cells and input gates, through the traces
        for (i64 c = 0; c < C; ++c) {
          const T es = e_s[c];
          const T* tc = trace_c.data() + (b * C + c) * M;
          const T* ti = trace_in.data() + (b * C + c) * M;
          T* row_c = gW.data() + (gK + c) * M;
          T* row_in = gW.data() + (c / BS) * M;
          for (i64 k = 0; k < M; ++k) {
            row_c[k] += es * tc[k];
            row_in[k] += es * ti[k];
          }
        }
      }
      // only existing connections learn; sum; and (on-line) change the weights now
      for (i64 k = 0; k < R * M; ++k) {
        const T g = gW[k] * W_mask[k];
        grad_W[k] += g;
        if (d.update == 1) W[k] -= g * lr;
        if (d.update == 2) batch_gW[k] += g;
      }
      for (const int col : touched_cols) {
        touched[col] = 0;
        for (i64 o = 0; o < O; ++o) {
          const i64 k = o * Z + col;
          const T g = gV[k] * V_mask[k];
          grad_V[k] += g;
          if (d.update == 1) V[k] -= g * lr;
          if (d.update == 2) batch_gV[k] += g;
        }
      }
    }
    if (d.update == 2) {  // once per batch, with the batch's own gradient
      for (i64 k = 0; k < R * M; ++k) W[k] -= batch_gW[k] * lr;
      for (i64 k = 0; k < O * Z; ++k) V[k] -= batch_gV[k] * lr;
    }
  }
}

}  // namespace

template <typename T>
void online1997_run(const OnlineDims& d, T* W, T* V, const T* W_mask, const T* V_mask,
                    const T* x, const int64_t* symbols, const T* targets, const T* mask,
                    const uint8_t* target_steps, const int64_t* lengths, const T* lr,
                    T* outputs, T* grad_W, T* grad_V, int threads) {
  const int nt = int(std::max<i64>(1, std::min<i64>(threads, d.N)));
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
  for (i64 n = 0; n < d.N; ++n)
    run_trial<T>(d, n, W, V, W_mask, V_mask, x, symbols, targets, mask, target_steps,
                 lengths, lr[n], outputs, grad_W, grad_V);
}

#define RNNLAB_INSTANTIATE(T)                                                            \
  template void online1997_run<T>(const OnlineDims&, T*, T*, const T*, const T*, const T*, \
                                  const int64_t*, const T*, const T*, const uint8_t*,      \
                                  const int64_t*, const T*, T*, T*, T*, int);
RNNLAB_INSTANTIATE(float)
RNNLAB_INSTANTIATE(double)

}  // namespace rnnlab
