// Elman RNN: the loops of rnnlab/cells/rnn.py, h_t = φ(W_ih x_t + b + W_hh h_{t−1}).
#include "rnn.h"

namespace rnnlab {
namespace {

enum Phi : int { kTanh = 0, kRelu = 1, kSigmoid = 2, kLinear = 3 };

template <typename T>
inline T phi(int kind, T a) {
  if (kind == kTanh) return fm::tanh(a);
  if (kind == kRelu) return a > T(0) ? a : T(0);
  if (kind == kSigmoid) return fm::sigmoid(a);
  return a;
}

template <typename T>
inline T phi_prime(int kind, T h) {  // read off the output, as the Python cell does
  if (kind == kTanh) return T(1) - h * h;
  if (kind == kRelu) return h > T(0) ? T(1) : T(0);
  if (kind == kSigmoid) return h * (T(1) - h);
  return T(1);
}

}  // namespace

template <typename T>
void rnn_forward(const RNNTape<T>& tp, int threads) {
  const i64 TT = tp.steps, B = tp.B, H = tp.H;
  const int kind = tp.nonlinearity;
  PackedB<T> W_t;
  W_t.pack(true, H, H, tp.W_hh, H);
  const Zone<T>& zh = tp.mk.zone[0];
  for_rows(B, threads, 4, [&](Rows rows) {
    std::vector<T> hd(tp.mk.drop ? rows.count(B) * H : 0);  // h_{t−1} ⊙ drop
    for (i64 t = 0; t < TT; ++t) {
      const i64 n = rows.count(running(tp.batch_sizes, B, t));
      if (n == 0) break;
      const i64 b0 = rows.first, s = rows.stride;
      T* h_out = tp.Hs + ((t + 1) * B + b0) * H;
      i64 ld;
      const T* h_in = product_input(tp.mk, tp.Hs + t * B * H, rows, n, H, hd, &ld);
      gemm<T>(false, n, h_in, ld, W_t, T(0), h_out, s * H);
      for (i64 r = 0; r < n; ++r) {
        T* __restrict h = h_out + r * s * H;
        const T* __restrict a = tp.xw + (t * B + b0 + r * s) * H;
#pragma omp simd
        for (i64 j = 0; j < H; ++j) h[j] = phi(kind, a[j] + h[j]);  // h = φ(xw + W_hh h)
        if (zh.on()) zh.mix(t, rows.row(r), tp.Hs + (t * B + rows.row(r)) * H, h);
      }
    }
  });
}

template <typename T>
void rnn_backward(const RNNTape<T>& tp, const T* d_out, const T* d_h, T* dG, T* dh0,
                  int threads) {
  const i64 TT = tp.steps, B = tp.B, H = tp.H;
  const i64* bs = tp.batch_sizes;
  const int kind = tp.nonlinearity;
  PackedB<T> W;
  W.pack(false, H, H, tp.W_hh, H);
  const Zone<T>& zh = tp.mk.zone[0];
  for_rows(B, threads, 4, [&](Rows rows) {
    const i64 n0 = rows.count(B);
    std::vector<T> dh(n0 * H, T(0));
    std::vector<T> kept(zh.on() ? n0 * H : 0);  // zoneout: z δh_t, straight to h_{t−1}
    if (!bs)
      for (i64 r = 0; r < n0; ++r)
        std::copy(d_h + rows.row(r) * H, d_h + (rows.row(r) + 1) * H, dh.data() + r * H);
    for (i64 t = TT - 1; t >= 0; --t) {
      const i64 n = rows.count(running(bs, B, t));
      if (n == 0) continue;
      const i64 last = ending(bs, TT, t), b0 = rows.first, s = rows.stride;
      for (i64 r = 0; r < n; ++r) {
        const i64 b = rows.row(r);
        T* __restrict dhr = dh.data() + r * H;
        const T* __restrict dout = d_out + (t * B + b) * H;
        const T* __restrict fin = d_h + b * H;
        // φ' is read off the cell's own output h̃_t (= h_t without zoneout)
        const T* __restrict h = zh.on() ? zh.cand_at(t, b) : tp.Hs + ((t + 1) * B + b) * H;
        T* __restrict da = dG + (t * B + b) * H;
        const T enter = bs && b >= last ? T(1) : T(0);  // b's final state is read at t
        if (zh.on()) {
#pragma omp simd
          for (i64 j = 0; j < H; ++j) dhr[j] = dhr[j] + enter * fin[j] + dout[j];
          zh.split(t, b, dhr, kept.data() + r * H);
#pragma omp simd
          for (i64 j = 0; j < H; ++j) da[j] = dhr[j] * phi_prime(kind, h[j]);
        } else {
#pragma omp simd
          for (i64 j = 0; j < H; ++j)  // undoes h = φ(a): δa = φ'(a) δh
            da[j] = (dhr[j] + enter * fin[j] + dout[j]) * phi_prime(kind, h[j]);
        }
      }
      // undoes a += W_hh h_{t−1}: δh_{t−1} = W_hhᵀ δa (⊙ drop; + what zoneout kept)
      gemm<T>(false, n, dG + (t * B + b0) * H, s * H, W, T(0), dh.data(), H);
      if (tp.mk.drop || zh.on())
        finish_carry(tp.mk, rows, n, H, dh.data(), zh.on() ? kept.data() : nullptr);
    }
    for (i64 r = 0; r < n0; ++r)
      std::copy(dh.data() + r * H, dh.data() + (r + 1) * H, dh0 + rows.row(r) * H);
  });
}

template void rnn_forward<float>(const RNNTape<float>&, int);
template void rnn_forward<double>(const RNNTape<double>&, int);
template void rnn_backward<float>(const RNNTape<float>&, const float*, const float*, float*,
                                  float*, int);
template void rnn_backward<double>(const RNNTape<double>&, const double*, const double*,
                                   double*, double*, int);

}  // namespace rnnlab
