#pragma once

#include "engine.h"

namespace rnnlab {

template <typename T>
struct LSTM1997Tape {  // the buffers of cells/lstm1997.py's tape
  i64 steps, B;
  i64 K, S;                // blocks, cells per block
  bool output_gate, gate_recurrence;
  int g, h;                // squashers (fm::Squash codes)
  T* xw;                   // (1, T, B, R) net inputs [in (K), out (K), cells (C)]; the gates'
                           // become their activations, the cells' stay net_c
  T* Ys;                   // (T + 1, B, Y): y = [y^c, gates (with gate_recurrence)]
  T* Ss;                   // (T + 1, B, C) cell states
  T* g_buf;                // (T, B, C) g(net_c)
  T* h_buf;                // (T, B, C) h(s_c)
  const T* W_hh;           // (R, Y) or null (no recurrence)
  const i64* batch_sizes;  // (T) or null
};

template <typename T>
void lstm1997_forward(const LSTM1997Tape<T>& tape, int threads);

// d_out (T, B, Y), d_y (B, Y), d_s (B, C); writes dy0 (B, Y), ds0 (B, C) and either
// dG (1, T, B, R) or, with `fused`, the weight gradients themselves
template <typename T>
void lstm1997_backward(const LSTM1997Tape<T>& tape, bool truncated, const T* d_out,
                       const T* d_y, const T* d_s, T* dG, T* dy0, T* ds0, int threads,
                       const Fused<T>* fused);

}  // namespace rnnlab
