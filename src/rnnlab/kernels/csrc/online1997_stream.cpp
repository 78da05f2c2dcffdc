// The 1997 learner on continual streams (Gers, Schmidhuber & Cummins 2000): each trial reads
// its own unbroken stream of symbols and learns at every step; nothing is reset between calls
// (the state and the traces come in and go out), a trial's stream can end at its first wrong
// prediction, and a block may have a forget gate. The specification is rnnlab/online.py
// (OnlineLSTM1997.stream and its reference path), which states the equations; this is the
// same rule for one trial at a time, the trials in parallel.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "online1997.h"

namespace rnnlab {
namespace {

using fm::sigmoid;
using fm::squash;
using fm::squash_prime;

template <typename T>
void stream_trial(const StreamDims& d, i64 n, T* W, T* V, const T* W_mask, const T* V_mask,
                  const int64_t* symbols, const T* targets, const uint8_t* resets, T lr,
                  T* y, T* s, T* traces, T* outputs, int64_t* steps, uint8_t* erred) {
  const i64 N = d.N, I = d.I, K = d.K, BS = d.BS, O = d.O, C = K * BS;
  const i64 gK = (1 + d.output_gate + d.forget_gate) * K, R = gK + C;
  const i64 out0 = K, f0 = gK - K;  // first output-gate row, first forget-gate row
  const i64 Y = C + (d.gate_recurrence ? gK : 0), M = I + Y + 1;
  const i64 Z = C + (d.sees_input ? I : 0) + 1;
  W += n * R * M;
  V += n * O * Z;
  W_mask += n * R * M;
  V_mask += n * O * Z;
  y += n * Y;
  s += n * C;
  // traces (3, N, C, M): ∂s_c/∂w of the cell inputs, the input gates, the forget gates
  T* tc = traces + n * C * M;
  T* ti = traces + (N + n) * C * M;
  T* tf = traces + (2 * N + n) * C * M;
  std::vector<T> u(M), net(R), gates(gK), gc(C), hs(C), yc(C), z(Z), out(O), delta(O), es(C);
  std::vector<T> dgate(gK);
  const bool learn = d.learn && lr != T(0);
  T rate = lr;  // decays by d.lr_decay after each step (Gers et al.'s α decay)
  i64 t = 0;
  bool error = false;
  for (; t < d.T && !error; ++t) {
    const i64 row = t * N + n;
    if (resets && resets[row]) {  // the external reset: activations, states, traces to zero
      std::fill(y, y + Y, T(0));
      std::fill(s, s + C, T(0));
      if (d.learn)
        for (T* tr : {tc, ti, tf}) std::fill(tr, tr + C * M, T(0));
    }
    const int64_t sym = symbols[row];
    std::fill(u.begin(), u.begin() + I, T(0));  // u = [x(t), y(t−1), 1]
    if (sym >= 0) u[sym] = T(1);
    std::copy(y, y + Y, u.begin() + I);
    u[M - 1] = T(1);
    for (i64 r = 0; r < R; ++r) {  // net = W u: the one-hot input is one column
      const T* w = W + r * M;
      T a = w[M - 1] + (sym >= 0 ? w[sym] : T(0));
      for (i64 k = 0; k < Y; ++k) a += w[I + k] * y[k];
      net[r] = a;
    }
    for (i64 r = 0; r < gK; ++r) gates[r] = sigmoid(net[r]);
    for (i64 c = 0; c < C; ++c) {
      const i64 j = c / BS;
      const T y_in = gates[j];
      gc[c] = squash(d.g, net[gK + c]);
      if (d.learn) {
        T* rc = tc + c * M;
        T* ri = ti + c * M;
        if (d.forget_gate) {  // every trace fades with the carousel; the forget gate's own
          const T y_f = gates[f0 + j], df = s[c] * y_f * (T(1) - y_f);
          T* rf = tf + c * M;
          for (i64 m = 0; m < M; ++m) {
            rc[m] *= y_f;
            ri[m] *= y_f;
            rf[m] = rf[m] * y_f + df * u[m];
          }
        }
        const T dc = y_in * squash_prime(d.g, gc[c]), di = gc[c] * y_in * (T(1) - y_in);
        for (i64 m = 0; m < M; ++m) {
          rc[m] += dc * u[m];
          ri[m] += di * u[m];
        }
      }
      s[c] = (d.forget_gate ? gates[f0 + j] * s[c] : s[c]) + y_in * gc[c];  // the carousel
      hs[c] = squash(d.h, s[c]);
      yc[c] = d.output_gate ? gates[out0 + j] * hs[c] : hs[c];
    }
    std::copy(yc.begin(), yc.end(), y);
    if (d.gate_recurrence) std::copy(gates.begin(), gates.end(), y + C);
    std::copy(yc.begin(), yc.end(), z.begin());  // z = [y^c, (x), 1]; out = σ(V z)
    if (d.sees_input) {
      std::fill(z.begin() + C, z.begin() + C + I, T(0));
      if (sym >= 0) z[C + sym] = T(1);
    }
    z[Z - 1] = T(1);
    const T* target = targets + row * O;
    for (i64 o = 0; o < O; ++o) {
      const T* v = V + o * Z;
      T a = T(0);
      for (i64 q = 0; q < Z; ++q) a += v[q] * z[q];
      out[o] = d.linear_output ? a : sigmoid(a);
      outputs[row * O + o] = out[o];
      if (d.stop_error > 0 && std::abs(out[o] - target[o]) >= T(d.stop_error)) error = true;
    }
    if (!learn) continue;
    // the error at the outputs and the cells (with V as it is before this step's change)
    for (i64 o = 0; o < O; ++o)
      delta[o] = d.cross_entropy || d.linear_output ? out[o] - target[o]
                                 : (out[o] - target[o]) * out[o] * (T(1) - out[o]);
    for (i64 c = 0; c < C; ++c) {
      T e = T(0);
      for (i64 o = 0; o < O; ++o) e += V[o * Z + c] * delta[o];
      const i64 j = c / BS;
      if (d.output_gate) {  // ∂E/∂w_out: this step only
        const T y_o = gates[out0 + j];
        if (c % BS == 0) dgate[out0 + j] = T(0);
        dgate[out0 + j] += e * hs[c] * y_o * (T(1) - y_o);
        e *= y_o;
      }
      es[c] = e * squash_prime(d.h, hs[c]);
    }
    for (i64 o = 0; o < O; ++o)
      for (i64 q = 0; q < Z; ++q) V[o * Z + q] -= rate * delta[o] * z[q] * V_mask[o * Z + q];
    if (d.output_gate)
      for (i64 j = 0; j < K; ++j) {
        T* w = W + (out0 + j) * M;
        const T* wm = W_mask + (out0 + j) * M;
        for (i64 m = 0; m < M; ++m) w[m] -= rate * dgate[out0 + j] * u[m] * wm[m];
      }
    for (i64 j = 0; j < K; ++j) {  // gates through the traces, summed over the block's cells
      T* wi = W + j * M;
      T* wf = W + (f0 + j) * M;
      const T* mi = W_mask + j * M;
      const T* mf = W_mask + (f0 + j) * M;
      for (i64 m = 0; m < M; ++m) {
        T gi = T(0), gf = T(0);
        for (i64 c = j * BS; c < (j + 1) * BS; ++c) {
          gi += es[c] * ti[c * M + m];
          if (d.forget_gate) gf += es[c] * tf[c * M + m];
        }
        wi[m] -= rate * gi * mi[m];
        if (d.forget_gate) wf[m] -= rate * gf * mf[m];
      }
    }
    for (i64 c = 0; c < C; ++c) {  // cells through their traces
      T* w = W + (gK + c) * M;
      const T* wm = W_mask + (gK + c) * M;
      for (i64 m = 0; m < M; ++m) w[m] -= rate * es[c] * tc[c * M + m] * wm[m];
    }
    rate *= T(d.lr_decay);
  }
  steps[n] = t;
  erred[n] = error;
}

}  // namespace

template <typename T>
void online1997_stream(const StreamDims& d, T* W, T* V, const T* W_mask, const T* V_mask,
                       const int64_t* symbols, const T* targets, const uint8_t* resets,
                       const T* lr, T* y, T* s, T* traces, T* outputs, int64_t* steps,
                       uint8_t* erred, int threads) {
  const int nt = int(std::max<i64>(1, std::min<i64>(threads, d.N)));
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
  for (i64 n = 0; n < d.N; ++n)
    stream_trial<T>(d, n, W, V, W_mask, V_mask, symbols, targets, resets, lr[n], y, s, traces,
                    outputs, steps, erred);
}

#define RNNLAB_INSTANTIATE(T)                                                                 \
  template void online1997_stream<T>(const StreamDims&, T*, T*, const T*, const T*,           \
                                     const int64_t*, const T*, const uint8_t*, const T*, T*, \
                                     T*, T*, T*, int64_t*, uint8_t*, int);
RNNLAB_INSTANTIATE(float)
RNNLAB_INSTANTIATE(double)

}  // namespace rnnlab
