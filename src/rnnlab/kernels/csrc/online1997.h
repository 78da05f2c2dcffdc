// The 1997 LSTM's on-line learner (truncated RTRL), one compiled call per batch of
// sequences. The specification is rnnlab/online.py (OnlineLSTM1997.run); this is the same
// rule, loop for loop, with the per-step work of a trial done in plain arithmetic.
#pragma once

#include <cstdint>

#include "fastmath.h"

namespace rnnlab {

using i64 = int64_t;

struct OnlineDims {
  i64 S, T, N, B, I;     // batches in series, steps, trials, sequences per trial, inputs
  i64 K, BS;             // blocks, cells per block
  bool output_gate;      // blocks have output gates
  bool gate_recurrence;  // y(t−1) holds the gates' activations too
  bool sees_input;       // the output units see x(t) as well as the cells
  int g, h;              // squashers (Squash codes)
  i64 O;                 // output units
  int update;            // 0 none, 1 every step with a target, 2 once per batch
  bool outputs_all;      // readout at every step (else only at target steps)
  bool has_targets;      // targets, mask and target_steps are given
  bool need_grad;        // carry the traces and compute the gradient
  bool cross_entropy;    // the output error is cross-entropy (else ½ squared error)
  bool linear_output;    // the output units are linear (else logistic)
};

// W (N, R, M), V (N, O, Z) are updated in place; W_mask, V_mask (same shapes) say which
// connections exist. Inputs are x (S, T, N, B, I) or, when x is
// null, symbols (S, T, N, B): the index of the one active input, −1 for none. targets
// (S, T, N, B, O), mask (S, T, N, B), target_steps (S, T): a target anywhere at this step;
// lengths (S, N, B): steps of each sequence. outputs (S, T, N, B, O) are written where
// computed; grad_W, grad_V (zeroed by the caller) receive the summed gradient.
template <typename T>
void online1997_run(const OnlineDims& d, T* W, T* V, const T* W_mask, const T* V_mask,
                    const T* x, const int64_t* symbols, const T* targets, const T* mask,
                    const uint8_t* target_steps, const int64_t* lengths, const T* lr,
                    T* outputs, T* grad_W, T* grad_V, int threads);

// The same with trials as vector lanes (online1997_lanes.cpp): what online1997_run calls when
// several trials learn side by side.
template <typename T>
void online1997_lanes(const OnlineDims& d, T* W, T* V, const T* W_mask, const T* V_mask,
                      const T* x, const int64_t* symbols, const T* targets, const T* mask,
                      const uint8_t* target_steps, const int64_t* lengths, const T* lr,
                      T* outputs, T* grad_W, T* grad_V, int threads);

struct StreamDims {
  i64 T, N, I;            // steps, trials (one stream each), inputs (symbols)
  i64 K, BS, O;           // blocks, cells per block, output units
  bool output_gate, forget_gate, gate_recurrence, sees_input;
  int g, h;               // squashers (Squash codes)
  bool learn;             // carry the traces and change the weights at every step
  bool cross_entropy;     // the output error is cross-entropy (else ½ squared error)
  double stop_error;      // a stream ends after a step with |out − target| ≥ this (0: never)
  double lr_decay;        // the learning rate is multiplied by this after every step
  bool linear_output;     // the output units are linear (else logistic)
};

// Continual streams (online1997_stream.cpp): symbols (T, N), targets (T, N, O) at every step,
// resets (T, N) or null; lr (N); the state y (N, Y), s (N, C), traces (3, N, C, M) is read and
// left where each stream stopped; outputs (T, N, O) written up to there; steps (N) run and
// erred (N): whether the stream ended at a wrong prediction.
template <typename T>
void online1997_stream(const StreamDims& d, T* W, T* V, const T* W_mask, const T* V_mask,
                       const int64_t* symbols, const T* targets, const uint8_t* resets,
                       const T* lr, T* y, T* s, T* traces, T* outputs, int64_t* steps,
                       uint8_t* erred, int threads);

}  // namespace rnnlab
