// The 1997 on-line learner, compiled: the dispatch, and the testing loop.
//
// Learning (traces, gradients, weight changes) runs in online1997_lanes.cpp, trials as vector
// lanes. Testing a network — its outputs, no traces — runs here, one trial at a time with its
// B sequences side by side: a test set is many sequences of one network, not one sequence of
// many. Same forward rule as rnnlab/online.py, which states the equations.
//
// Inputs of the 1997 tasks are mostly one-hot, so the sources u = [x, y(t−1), 1] and the
// readout's z = [y^c, (x), 1] are kept as lists of their nonzero entries: W u touches those
// columns only. Skipping exact zeros changes no value; it makes a step of task 2c (1,000+
// inputs) cost as much as one of the adding problem (2 inputs).
#include <omp.h>

#include <algorithm>
#include <vector>

#include "online1997.h"

namespace rnnlab {
namespace {

using fm::sigmoid;
using fm::squash;

template <typename T>
struct Sparse {  // the nonzero entries of a vector: index and value
  std::vector<int> idx;
  std::vector<T> val;
  i64 n = 0;
  void resize(i64 size) { idx.resize(size); val.resize(size); }
  void push(int i, T v) { idx[n] = i; val[n] = v; ++n; }
};

template <typename T>
void test_trial(const OnlineDims& d, i64 n, const T* W, const T* V, const T* x,
                const int64_t* symbols, const uint8_t* target_steps, const int64_t* lengths,
                T* outputs) {
  const i64 N = d.N, B = d.B, I = d.I, K = d.K, BS = d.BS, O = d.O;
  const i64 C = K * BS, gK = (d.output_gate ? 2 : 1) * K, R = gK + C;
  const i64 Y = C + (d.gate_recurrence ? gK : 0), M = I + Y + 1;
  const i64 Z = C + (d.sees_input ? I : 0) + 1;
  W += n * R * M;
  V += n * O * Z;
  std::vector<T> y(B * Y), s(B * C), gates(gK), net(R);
  Sparse<T> u, z;
  u.resize(M);
  z.resize(Z);
  for (i64 sq = 0; sq < d.S; ++sq) {
    std::fill(y.begin(), y.end(), T(0));  // every sequence starts from zero activations
    std::fill(s.begin(), s.end(), T(0));
    const int64_t* len = lengths + (sq * N + n) * B;
    const i64 steps = *std::max_element(len, len + B);
    for (i64 t = 0; t < steps; ++t) {
      const bool readout = d.outputs_all || (d.has_targets && target_steps[sq * d.T + t]);
      for (i64 b = 0; b < B; ++b) {
        if (t >= len[b]) continue;  // this sequence has ended
        const i64 row = ((sq * d.T + t) * N + n) * B + b;
        const T* xt = x ? x + row * I : nullptr;
        const int64_t sym = x ? -1 : symbols[row];
        T* yb = y.data() + b * Y;
        u.n = 0;  // u = [x(t), y(t−1), 1]
        if (xt) {
          for (i64 i = 0; i < I; ++i)
            if (xt[i] != T(0)) u.push(int(i), xt[i]);
        } else if (sym >= 0) {
          u.push(int(sym), T(1));
        }
        for (i64 k = 0; k < Y; ++k)
          if (yb[k] != T(0)) u.push(int(I + k), yb[k]);
        u.push(int(M - 1), T(1));
        for (i64 r = 0; r < R; ++r) {  // net = W u
          const T* w = W + r * M;
          T a = T(0);
          for (i64 q = 0; q < u.n; ++q) a += w[u.idx[q]] * u.val[q];
          net[r] = a;
        }
        for (i64 r = 0; r < gK; ++r) gates[r] = sigmoid(net[r]);  // y^in, y^out
        T* sb = s.data() + b * C;
        for (i64 c = 0; c < C; ++c) {
          const i64 j = c / BS;
          sb[c] += gates[j] * squash(d.g, net[gK + c]);  // the carousel
          const T h = squash(d.h, sb[c]);
          yb[c] = d.output_gate ? gates[K + j] * h : h;  // y^c = y^out h(s_c)
        }
        if (d.gate_recurrence) std::copy(gates.begin(), gates.end(), yb + C);
        if (!readout) continue;
        z.n = 0;  // z = [y^c, (x), 1]; out = σ(V z)
        for (i64 c = 0; c < C; ++c)
          if (yb[c] != T(0)) z.push(int(c), yb[c]);
        if (d.sees_input) {
          if (xt) {
            for (i64 i = 0; i < I; ++i)
              if (xt[i] != T(0)) z.push(int(C + i), xt[i]);
          } else if (sym >= 0) {
            z.push(int(C + sym), T(1));
          }
        }
        z.push(int(Z - 1), T(1));
        for (i64 o = 0; o < O; ++o) {
          const T* v = V + o * Z;
          T a = T(0);
          for (i64 q = 0; q < z.n; ++q) a += v[z.idx[q]] * z.val[q];
          outputs[row * O + o] = d.linear_output ? a : sigmoid(a);
        }
      }
    }
  }
}

}  // namespace

template <typename T>
void online1997_run(const OnlineDims& d, T* W, T* V, const T* W_mask, const T* V_mask,
                    const T* x, const int64_t* symbols, const T* targets, const T* mask,
                    const uint8_t* target_steps, const int64_t* lengths, const T* lr,
                    T* outputs, T* grad_W, T* grad_V, int threads) {
  if (d.need_grad) {  // learning: the trials as vector lanes
    online1997_lanes(d, W, V, W_mask, V_mask, x, symbols, targets, mask, target_steps,
                     lengths, lr, outputs, grad_W, grad_V, threads);
    return;
  }
  const int nt = int(std::max<i64>(1, std::min<i64>(threads, d.N)));
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
  for (i64 n = 0; n < d.N; ++n)
    test_trial<T>(d, n, W, V, x, symbols, target_steps, lengths, outputs);
}

#define RNNLAB_INSTANTIATE(T)                                                            \
  template void online1997_run<T>(const OnlineDims&, T*, T*, const T*, const T*, const T*, \
                                  const int64_t*, const T*, const T*, const uint8_t*,      \
                                  const int64_t*, const T*, T*, T*, T*, int);
RNNLAB_INSTANTIATE(float)
RNNLAB_INSTANTIATE(double)

}  // namespace rnnlab
