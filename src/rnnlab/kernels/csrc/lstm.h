#pragma once

#include "layer_norm.h"

namespace rnnlab {

template <typename T>
struct LSTMTape {  // the buffers of cells/lstm.py's tape
  i64 steps, B, H, P;      // steps T, batch, hidden, output size (proj_size or H)
  T* xw;                   // (4, T, B, H) pre-activations in, activations i, f, g, o out
  T* Hs;                   // (T + 1, B, P)
  T* Cs;                   // (T + 1, B, H)
  T* tanh_c;               // (T, B, H)
  T* m;                    // (T, B, H) o ⊙ tanh(c), with a projection; else null
  const T* W_hh;           // (4H, P)
  const T* W_hr;           // (P, H) or null
  const T* peep;           // (3H) p_i, p_f, p_o, or null
  const i64* batch_sizes;  // (T) or null
  Masks<T> mk;             // recurrent dropout, zoneout on h and c
  LayerNorms<T> ln;        // layer norms (cells/lstm_ln.py), or none
};

template <typename T>
void lstm_forward(const LSTMTape<T>& tape, int threads);

// d_out (T, B, P), d_h (B, P), d_c (B, H): gradients of the outputs and final states.
// Writes the initial-state gradients dh0 (B, P), dc0 (B, H), and either δa as dG
// (4, T, B, H) and dh_buf (T, B, P) (with a projection) for the products after the loop (both
// zero-filled by the caller when the batch is padded), or, with `fused`, the weight gradients
// themselves: those of `fused`, d_peep (3H) with peepholes, d_W_hr (P, H) with a projection
// (all zero-filled by the caller). With layer norms (never fused) it also writes tape.ln's dV,
// dU and sums (zero-filled by the caller), and δh_{t−1} = W_hhᵀ δv_t.
template <typename T>
void lstm_backward(const LSTMTape<T>& tape, bool truncated, const T* d_out, const T* d_h,
                   const T* d_c, T* dG, T* dh_buf, T* dh0, T* dc0, int threads,
                   const Fused<T>* fused, T* d_peep, T* d_W_hr);

}  // namespace rnnlab
