#pragma once

#include "engine.h"

namespace rnnlab {

template <typename T>
struct RNNTape {  // the buffers of cells/rnn.py's tape
  i64 steps, B, H;
  T* xw;                   // (1, T, B, H) W_ih x + b, read only
  T* Hs;                   // (T + 1, B, H)
  const T* W_hh;           // (H, H)
  const i64* batch_sizes;  // (T) or null
  int nonlinearity;        // 0 tanh, 1 relu, 2 sigmoid, 3 linear
  Masks<T> mk;             // recurrent dropout, zoneout on h
};

template <typename T>
void rnn_forward(const RNNTape<T>& tape, int threads);

// d_out (T, B, H), d_h (B, H); writes dG (1, T, B, H) and dh0 (B, H)
template <typename T>
void rnn_backward(const RNNTape<T>& tape, const T* d_out, const T* d_h, T* dG, T* dh0,
                  int threads);

}  // namespace rnnlab
