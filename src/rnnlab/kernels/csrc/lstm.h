#pragma once

#include "engine.h"

namespace rnnlab {

template <typename T>
struct LSTMNorm {  // cells/lstm_ln.py's layer norms; all null for the plain cell
  const T* g_x = nullptr;   // (4H) γ_x, of u = W_ih x_t's normalisation (xw holds u on entry)
  const T* beta = nullptr;  // (4H) β_x + β_h + b_ih + b_hh, added after both
  const T* g_h = nullptr;   // (4H) γ_h, of v = W_hh h_{t−1}'s
  const T* g_c = nullptr;   // (H) γ_c, β_c, of c_t's
  const T* b_c = nullptr;
  T* n_x = nullptr;  // (4, T, B, H) n^x, gate-major
  T* r_x = nullptr;  // (T, B) its 1/√(var + ε)
  T* n_h = nullptr;  // (4, T, B, H) n^h
  T* r_h = nullptr;  // (T, B)
  T* n_c = nullptr;  // (T, B, H) n^c
  T* r_c = nullptr;  // (T, B)
  T* dV = nullptr;   // backward: (4, T, B, H) δv_t, gate-major, for ∂L/∂W_hh
  T* dU = nullptr;   // backward: (4, T, B, H) δu_t, for ∂L/∂W_ih and ∂L/∂x
  T* sums = nullptr; // backward: (10H) ∂L/∂γ_x, ∂L/∂γ_h, ∂L/∂γ_c, ∂L/∂β_c, summed in the loop
  bool on() const { return g_h != nullptr; }
};

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
  LSTMNorm<T> ln;          // layer norms (cells/lstm_ln.py), or none
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
