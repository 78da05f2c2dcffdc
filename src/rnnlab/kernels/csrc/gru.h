#pragma once

#include "layer_norm.h"

namespace rnnlab {

template <typename T>
struct GRUTape {  // the buffers of cells/gru.py's tape
  i64 steps, B, H;
  T* xw;                   // (3, T, B, H) pre-activations in, activations r, z, n out
  T* Hs;                   // (T + 1, B, H)
  T* hw;                   // reset_after: (3, T, B, H) W_hh h_{t−1} + b_hh; else null
  T* rh;                   // reset_after = false: (T, B, H) r ⊙ h_{t−1}; else null
  const T* W_hh;           // (3H, H)
  const T* b_hh;           // (3H) or null (reset_after only: otherwise folded into xw); with
                           // layer norms β_h + b_hh
  const i64* batch_sizes;  // (T) or null
  Masks<T> mk;             // recurrent dropout, zoneout on h
  LayerNorms<T> ln;        // layer norms (cells/gru_ln.py, reset_after only), or none
};

template <typename T>
void gru_forward(const GRUTape<T>& tape, int threads);

// d_out (T, B, H), d_h (B, H); writes dG (3, T, B, H), with reset_after dhw (3, T, B, H)
// (the gradient of W_hh h + b_hh), and dh0 (B, H); with layer norms also tape.ln's dV, dU and
// sums (zero-filled by the caller), and δh_{t−1} through W_hhᵀ δv_t
template <typename T>
void gru_backward(const GRUTape<T>& tape, const T* d_out, const T* d_h, T* dG, T* dhw,
                  T* dh0, int threads);

}  // namespace rnnlab
