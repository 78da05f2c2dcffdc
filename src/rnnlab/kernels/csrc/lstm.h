#pragma once

#include "layer_norm.h"

namespace rnnlab {

// Greff et al.'s (2017) variants (cells/lstm_variants.py), as the kernels' template argument
enum LSTMVariant : int { VANILLA = 0, NIG, NFG, NOG, NIAF, NOAF, CIFG, FGR };

// What a variant has and where: gate blocks in torch's order (i, f, g, o) with the missing one
// left out, peephole blocks in (i, f, o) among the sigmoid gates that exist
template <int V>
struct Gates {
  static constexpr bool has_i = V != NIG && V != CIFG;
  static constexpr bool has_f = V != NFG;
  static constexpr bool has_o = V != NOG;
  static constexpr bool coupled = V == CIFG;    // i = 1 − f
  static constexpr bool linear_g = V == NIAF;   // g = a_g
  static constexpr bool linear_s = V == NOAF;   // m = o c
  static constexpr bool fgr = V == FGR;         // [a_i; a_f; a_o] += W_gr q_{t−1}
  static constexpr int bi = has_i ? 0 : -1;
  static constexpr int bf = has_f ? int(has_i) : -1;
  static constexpr int bg = int(has_i) + int(has_f);
  static constexpr int bo = has_o ? bg + 1 : -1;
  static constexpr int n = bg + 1 + int(has_o);  // gate blocks
  static constexpr int pi = has_i ? 0 : -1;
  static constexpr int pf = has_f ? int(has_i) : -1;
  static constexpr int po = has_o ? int(has_i) + int(has_f) : -1;
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
  LayerNorms<T> ln;        // layer norms (cells/lstm_ln.py), or none
  int variant = VANILLA;   // LSTMVariant: xw then holds Gates<variant>::n blocks
  const T* W_gr = nullptr; // FGR: (3H, 3H), rows and columns (i, f, o)
  T* Qs = nullptr;         // FGR: (T + 1, B, 3H) q_t = [i_t; f_t; o_t], slot 0 the initial
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
// FGR also takes d_q (B, 3H), the final q's gradient, and writes dq0 (B, 3H).
template <typename T>
void lstm_backward(const LSTMTape<T>& tape, bool truncated, const T* d_out, const T* d_h,
                   const T* d_c, T* dG, T* dh_buf, T* dh0, T* dc0, int threads,
                   const Fused<T>* fused, T* d_peep, T* d_W_hr, const T* d_q = nullptr,
                   T* dq0 = nullptr);

}  // namespace rnnlab
