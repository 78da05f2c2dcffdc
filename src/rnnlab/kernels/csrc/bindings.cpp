// The kernels as torch operators (torch.ops.rnnlab.*). The Python callers (engine.py,
// online.py) hand over contiguous CPU tensors of one floating dtype; this file only checks
// that, unpacks pointers and sizes, and dispatches on the dtype.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <tuple>
#include <utility>
#include <vector>

#include "gemm.h"
#include "gru.h"
#include "lstm.h"
#include "lstm1997.h"
#include "online1997.h"
#include "rnn.h"

namespace rnnlab {
namespace {

using at::Tensor;

void check(const Tensor& t, const Tensor& like, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), "rnnlab kernels: ", name, " must be on the CPU");
  TORCH_CHECK(t.is_contiguous(), "rnnlab kernels: ", name, " must be contiguous");
  TORCH_CHECK(t.scalar_type() == like.scalar_type(), "rnnlab kernels: ", name,
              " has the wrong dtype");
}

void check_index(const Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.is_contiguous() && t.scalar_type() == at::kLong,
              "rnnlab kernels: ", name, " must be contiguous int64 on the CPU");
}

template <typename T>
T* ptr(const Tensor& t) {
  return t.numel() ? static_cast<T*>(t.data_ptr()) : nullptr;
}

// The learner's whole call, its argument preparation included: the caller (online.py) has
// checked the shapes; this checks the values, expands the defaults and broadcasts, allocates
// the results and runs the rule. config: input_size, num_blocks, block_size, output_gate,
// gate_recurrence, g, h, sees_input, update, outputs_all, need_grad, cross_entropy,
// linear_output.
std::tuple<Tensor, Tensor, Tensor> online1997_op(Tensor W, Tensor V, const Tensor& W_mask,
                                                 const Tensor& V_mask, const Tensor& x,
                                                 const Tensor& targets, const Tensor& mask,
                                                 const Tensor& lengths, double lr,
                                                 const Tensor& lr_trials,
                                                 at::IntArrayRef config, int64_t threads) {
  using Named = std::pair<const Tensor*, const char*>;
  for (const Named& a : {Named{&W, "W"}, Named{&V, "V"}, Named{&W_mask, "W_mask"},
                         Named{&V_mask, "V_mask"}})
    check(*a.first, W, a.second);
  TORCH_CHECK(config.size() == 13 && W.dim() == 3 && V.dim() == 3, "rnnlab kernels: bad call");
  const bool symbolic = x.scalar_type() == at::kLong, has_targets = targets.numel() > 0;
  if (symbolic) check_index(x, "symbols");
  else check(x, W, "x");
  TORCH_CHECK(x.dim() == (symbolic ? 4 : 5), "rnnlab kernels: x must be (S, T, N, B[, I])");
  const i64 S = x.size(0), T = x.size(1), N = x.size(2), B = x.size(3), I = config[0];
  if (has_targets) check(targets, W, "targets");
  if (symbolic && x.numel()) {
    const auto [lo, hi] = std::minmax_element(x.data_ptr<int64_t>(),
                                              x.data_ptr<int64_t>() + x.numel());
    TORCH_CHECK_VALUE(*lo >= -1 && *hi < I, "symbols must lie in −1 … ", I - 1,
                      " (input_size − 1)");
  }
  // lengths (S or 1, N, B), default T
  std::vector<int64_t> len(std::size_t(S * N * B), T);
  if (lengths.numel()) {
    check_index(lengths, "lengths");
    const int64_t* l = lengths.data_ptr<int64_t>();
    const i64 per = N * B, given = lengths.numel() / std::max<i64>(1, per);
    for (i64 k = 0; k < lengths.numel(); ++k)
      TORCH_CHECK_VALUE(l[k] >= 0 && l[k] <= T, "lengths must lie in 0 … T = ", T);
    for (i64 sq = 0; sq < S; ++sq)
      std::copy(l + (given == 1 ? 0 : sq) * per, l + ((given == 1 ? 0 : sq) + 1) * per,
                len.begin() + sq * per);
  }
  // the mask (broadcast from (S or 1, T, N or 1, B or 1), bool) where a sequence runs, and
  // the steps with any target at all
  std::vector<uint8_t> live_mask(has_targets ? std::size_t(S * T * N * B) : 0),
      steps(std::size_t(S * T), 0);
  if (has_targets) {
    const bool given = mask.numel() > 0;
    TORCH_CHECK(!given || (mask.scalar_type() == at::kBool && mask.dim() == 4),
                "rnnlab kernels: mask must be a 4-d bool tensor");
    const Tensor m = given ? mask.expand({S, T, N, B}) : mask;
    const bool* mp = given ? m.data_ptr<bool>() : nullptr;
    for (i64 sq = 0; sq < S; ++sq)
      for (i64 t = 0; t < T; ++t)
        for (i64 n = 0; n < N; ++n)
          for (i64 b = 0; b < B; ++b) {
            const bool on = (!given || mp[sq * m.stride(0) + t * m.stride(1) +
                                          n * m.stride(2) + b * m.stride(3)]) &&
                            t < len[(sq * N + n) * B + b];
            live_mask[((sq * T + t) * N + n) * B + b] = on;
            steps[sq * T + t] |= on;
          }
  }
  const i64 O = V.size(1);
  Tensor outputs = at::full({S, T, N, B, O}, std::numeric_limits<double>::quiet_NaN(),
                            W.options());
  Tensor grad_W = at::zeros_like(W), grad_V = at::zeros_like(V);
  OnlineDims d{S, T, N, B, I, config[1], config[2], bool(config[3]), bool(config[4]),
               bool(config[7]), int(config[5]), int(config[6]), O, int(config[8]),
               bool(config[9]), has_targets, bool(config[10]), bool(config[11]),
               bool(config[12])};
  AT_DISPATCH_FLOATING_TYPES(W.scalar_type(), "online1997", [&] {
    using F = scalar_t;
    const std::vector<F> m(live_mask.begin(), live_mask.end());
    std::vector<F> rates(static_cast<std::size_t>(N), static_cast<F>(lr));
    if (lr_trials.numel()) {
      check(lr_trials, W, "lr");
      std::copy(lr_trials.data_ptr<F>(), lr_trials.data_ptr<F>() + N, rates.begin());
    }
    online1997_run<F>(d, ptr<F>(W), ptr<F>(V), ptr<F>(W_mask), ptr<F>(V_mask),
                      symbolic ? nullptr : ptr<F>(x), symbolic ? x.data_ptr<int64_t>() : nullptr,
                      ptr<F>(targets), m.data(), steps.data(), len.data(), rates.data(),
                      ptr<F>(outputs), ptr<F>(grad_W), ptr<F>(grad_V), int(threads));
  });
  return {outputs, grad_W, grad_V};
}

// Continual streams (OnlineLSTM1997.stream): the caller has checked shapes and dtypes. config:
// the network's part as online1997's (input_size, num_blocks, block_size, output_gate,
// gate_recurrence, g, h, sees_input), then forget_gate, learn, cross_entropy, linear_output.
// Returns outputs (T, N, O), steps (N), erred (N).
std::tuple<Tensor, Tensor, Tensor> online1997_stream_op(
    Tensor W, Tensor V, const Tensor& W_mask, const Tensor& V_mask, const Tensor& symbols,
    const Tensor& targets, const Tensor& resets, const Tensor& lr, Tensor y, Tensor s,
    Tensor traces, double stop_error, double lr_decay, at::IntArrayRef config,
    int64_t threads) {
  using Named = std::pair<const Tensor*, const char*>;
  for (const Named& a : {Named{&W, "W"}, Named{&V, "V"}, Named{&W_mask, "W_mask"},
                         Named{&V_mask, "V_mask"}, Named{&targets, "targets"}, Named{&lr, "lr"},
                         Named{&y, "y"}, Named{&s, "s"}, Named{&traces, "traces"}})
    check(*a.first, W, a.second);
  check_index(symbols, "symbols");
  TORCH_CHECK(config.size() == 12 && symbols.dim() == 2, "rnnlab kernels: bad call");
  const i64 T = symbols.size(0), N = symbols.size(1), O = V.size(1);
  TORCH_CHECK(!resets.numel() || (resets.scalar_type() == at::kBool && resets.is_contiguous() &&
                                  resets.numel() == T * N),
              "rnnlab kernels: resets must be (T, N) bool");
  StreamDims d{T, N, config[0], config[1], config[2], O, bool(config[3]), bool(config[8]),
               bool(config[4]), bool(config[7]), int(config[5]), int(config[6]),
               bool(config[9]), bool(config[10]), stop_error, lr_decay, bool(config[11])};
  Tensor outputs = at::full({T, N, O}, std::numeric_limits<double>::quiet_NaN(), W.options());
  Tensor steps = at::zeros({N}, symbols.options());
  Tensor erred = at::zeros({N}, symbols.options().dtype(at::kBool));
  const uint8_t* r = resets.numel() ? reinterpret_cast<const uint8_t*>(resets.data_ptr<bool>())
                                    : nullptr;
  AT_DISPATCH_FLOATING_TYPES(W.scalar_type(), "online1997_stream", [&] {
    using F = scalar_t;
    online1997_stream<F>(d, ptr<F>(W), ptr<F>(V), ptr<F>(W_mask), ptr<F>(V_mask),
                         symbols.data_ptr<int64_t>(), ptr<F>(targets), r, ptr<F>(lr), ptr<F>(y),
                         ptr<F>(s), ptr<F>(traces), ptr<F>(outputs), steps.data_ptr<int64_t>(),
                         reinterpret_cast<uint8_t*>(erred.data_ptr<bool>()), int(threads));
  });
  return {outputs, steps, erred};
}

// An absent optional buffer is passed as an empty tensor.
template <typename T>
T* opt(const Tensor& t) {
  return t.numel() ? static_cast<T*>(t.data_ptr()) : nullptr;
}

const int64_t* sizes_ptr(const Tensor& batch_sizes) {
  if (!batch_sizes.numel()) return nullptr;
  check_index(batch_sizes, "batch_sizes");
  return batch_sizes.data_ptr<int64_t>();
}

void check_all(std::initializer_list<std::pair<const Tensor*, const char*>> tensors,
               const Tensor& like) {
  for (const auto& [t, name] : tensors)
    if (t->numel()) check(*t, like, name);
}

// masks = [drop (B, P), zone_h (T|1, B|1, P), cand_h (T, B, P), zone_c (…, H), cand_c (T, B, H)],
// empty tensors where off (rnnlab.cells.base.Masks.kernel_args)
template <typename T>
Masks<T> masks_of(const std::vector<Tensor>& masks, const Tensor& xw,
                  std::initializer_list<i64> sizes) {
  TORCH_CHECK(masks.size() == 5, "rnnlab kernels: masks must be 5 tensors");
  const i64 TT = xw.size(1), B = xw.size(2);
  Masks<T> mk;
  if (masks[0].numel()) {
    check(masks[0], xw, "drop");
    TORCH_CHECK(masks[0].dim() == 2 && masks[0].size(0) == B &&
                masks[0].size(1) == *sizes.begin(), "rnnlab kernels: drop must be (B, P)");
    mk.drop = ptr<T>(masks[0]);
  }
  int k = 0;
  for (const i64 n : sizes) {
    const Tensor &z = masks[1 + 2 * k], &cand = masks[2 + 2 * k];
    if (z.numel()) {
      check(z, xw, "zone");
      check(cand, xw, "cand");
      TORCH_CHECK(z.dim() == 3 && (z.size(0) == TT || z.size(0) == 1) &&
                  (z.size(1) == B || z.size(1) == 1) && z.size(2) == n &&
                  cand.numel() == TT * B * n, "rnnlab kernels: zoneout mask of the wrong shape");
      Zone<T>& zn = mk.zone[k];
      zn.z = ptr<T>(z);
      zn.st = z.size(0) > 1 ? z.size(1) * n : 0;
      zn.sb = z.size(1) > 1 ? n : 0;
      zn.cand = ptr<T>(cand);
      zn.B = B;
      zn.n = n;
    }
    ++k;
  }
  return mk;
}

// norm = [γ_x, β, γ_h (nG·H each), (LSTM: γ_c, β_c (H each)), n_x (nG, T, B, H), r_x
// (T, B[, 1]), n_h (nG, T, B, H), r_h (T, B[, 1]), (LSTM: n_c (T, B, H), r_c (T, B[, 1])), then
// for the backward pass dV, dU (nG, T, B, H each) and sums (2nG·H, LSTM + 2H)] (cells/lstm_ln.py,
// gru_ln.py), or none: the plain cell. nG is xw's gate count; `cell`: c_t's norm too (LSTM).
template <typename T>
LayerNorms<T> norm_of(const std::vector<Tensor>& norm, const Tensor& xw, bool backward,
                      bool cell) {
  LayerNorms<T> ln;
  if (norm.empty()) return ln;
  const i64 nG = xw.size(0), TT = xw.size(1), B = xw.size(2), H = xw.size(3);
  const i64 N = TT * B * H, GH = nG * H;
  std::vector<i64> sizes{GH, GH, GH};
  if (cell) sizes.insert(sizes.end(), {H, H});
  sizes.insert(sizes.end(), {nG * N, TT * B, nG * N, TT * B});
  if (cell) sizes.insert(sizes.end(), {N, TT * B});
  if (backward) sizes.insert(sizes.end(), {nG * N, nG * N, 2 * GH + (cell ? 2 * H : 0)});
  TORCH_CHECK(norm.size() == sizes.size(), "rnnlab kernels: norm must be ", sizes.size(),
              " tensors or none");
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    check(norm[k], xw, "norm");
    TORCH_CHECK(norm[k].numel() == sizes[k], "rnnlab kernels: norm[", k, "] has ",
                norm[k].numel(), " entries, expected ", sizes[k]);
  }
  std::size_t k = 0;
  auto next = [&] { return ptr<T>(norm[k++]); };
  ln.g_x = next(), ln.beta = next(), ln.g_h = next();
  if (cell) ln.g_c = next(), ln.b_c = next();
  ln.n_x = next(), ln.r_x = next(), ln.n_h = next(), ln.r_h = next();
  if (cell) ln.n_c = next(), ln.r_c = next();
  if (backward) ln.dV = next(), ln.dU = next(), ln.sums = next();
  return ln;
}

// variant: an LSTMVariant (cells/lstm_variants.py); fgr = [W_gr (3H, 3H), Qs (T + 1, B, 3H),
// then for the backward pass d_q, dq0 (B, 3H)] for FGR, else none
template <typename T>
LSTMTape<T> lstm_tape(const Tensor& xw, const Tensor& Hs, const Tensor& Cs,
                      const Tensor& tanh_c, const Tensor& m, const Tensor& W_hh,
                      const Tensor& W_hr, const Tensor& peep, const Tensor& batch_sizes,
                      const std::vector<Tensor>& masks, const std::vector<Tensor>& norm,
                      int64_t variant, const std::vector<Tensor>& fgr, bool backward) {
  TORCH_CHECK(variant >= VANILLA && variant <= FGR, "rnnlab kernels: no LSTM variant ",
              variant);
  const i64 gates = variant == NIG || variant == NFG || variant == NOG || variant == CIFG ? 3 : 4;
  TORCH_CHECK(xw.size(0) == gates, "rnnlab kernels: variant ", variant, " has ", gates,
              " gate blocks, xw ", xw.size(0));
  TORCH_CHECK(variant == VANILLA || norm.empty(), "rnnlab kernels: variants have no layer norm");
  const i64 B = xw.size(2), Q = 3 * xw.size(3);
  const std::size_t n_fgr = variant == FGR ? (backward ? 4 : 2) : 0;
  TORCH_CHECK(fgr.size() == n_fgr, "rnnlab kernels: fgr must be ", n_fgr, " tensors");
  const std::array<i64, 4> fgr_sizes{Q * Q, (xw.size(1) + 1) * B * Q, B * Q, B * Q};
  for (std::size_t k = 0; k < n_fgr; ++k) {
    check(fgr[k], xw, "fgr");
    TORCH_CHECK(fgr[k].numel() == fgr_sizes[k], "rnnlab kernels: fgr[", k, "] has ",
                fgr[k].numel(), " entries, expected ", fgr_sizes[k]);
  }
  LSTMTape<T> tp{xw.size(1), xw.size(2), xw.size(3), Hs.size(2), ptr<T>(xw), ptr<T>(Hs),
                 ptr<T>(Cs), ptr<T>(tanh_c), opt<T>(m), ptr<T>(W_hh), opt<T>(W_hr),
                 opt<T>(peep), sizes_ptr(batch_sizes),
                 masks_of<T>(masks, xw, {Hs.size(2), Cs.size(2)}),
                 norm_of<T>(norm, xw, backward, true)};
  tp.variant = int(variant);
  if (n_fgr) tp.W_gr = ptr<T>(fgr[0]), tp.Qs = ptr<T>(fgr[1]);
  return tp;
}

void lstm_forward_op(Tensor xw, Tensor Hs, Tensor Cs, Tensor tanh_c, Tensor m,
                     const Tensor& W_hh, const Tensor& W_hr, const Tensor& peep,
                     const Tensor& batch_sizes, std::vector<Tensor> masks,
                     std::vector<Tensor> norm, int64_t variant, std::vector<Tensor> fgr,
                     int64_t threads) {
  check_all({{&xw, "xw"}, {&Hs, "Hs"}, {&Cs, "Cs"}, {&tanh_c, "tanh_c"}, {&m, "m"},
             {&W_hh, "W_hh"}, {&W_hr, "W_hr"}, {&peep, "peep"}}, xw);
  AT_DISPATCH_FLOATING_TYPES(xw.scalar_type(), "lstm_forward", [&] {
    lstm_forward(lstm_tape<scalar_t>(xw, Hs, Cs, tanh_c, m, W_hh, W_hr, peep, batch_sizes,
                                     masks, norm, variant, fgr, false),
                 int(threads));
  });
}

void lstm_backward_op(const Tensor& xw, const Tensor& Hs, const Tensor& Cs,
                      const Tensor& tanh_c, const Tensor& m, const Tensor& W_hh,
                      const Tensor& W_hr, const Tensor& peep, const Tensor& batch_sizes,
                      std::vector<Tensor> masks, std::vector<Tensor> norm,
                      int64_t variant, std::vector<Tensor> fgr, bool truncated,
                      const Tensor& d_out, const Tensor& d_h, const Tensor& d_c,
                      Tensor dG, Tensor dh_buf, Tensor dh0, Tensor dc0, const Tensor& x,
                      const Tensor& W_ih, Tensor dx, Tensor dW_ih, Tensor db, Tensor dW_hh,
                      Tensor d_peep, Tensor d_W_hr, int64_t threads) {
  check_all({{&xw, "xw"}, {&Hs, "Hs"}, {&Cs, "Cs"}, {&tanh_c, "tanh_c"}, {&m, "m"},
             {&W_hh, "W_hh"}, {&W_hr, "W_hr"}, {&peep, "peep"}, {&d_out, "d_out"},
             {&d_h, "d_h"}, {&d_c, "d_c"}, {&dG, "dG"}, {&dh_buf, "dh_buf"}, {&dh0, "dh0"},
             {&dc0, "dc0"}, {&x, "x"}, {&W_ih, "W_ih"}, {&dx, "dx"}, {&dW_ih, "dW_ih"},
             {&db, "db"}, {&dW_hh, "dW_hh"}, {&d_peep, "d_peep"}, {&d_W_hr, "d_W_hr"}}, xw);
  AT_DISPATCH_FLOATING_TYPES(xw.scalar_type(), "lstm_backward", [&] {
    using T = scalar_t;
    const bool on = dW_ih.numel() > 0;
    const Fused<T> fused{on ? W_ih.size(0) : 0, on ? W_ih.size(1) : 0, Hs.size(2), opt<T>(x),
                         opt<T>(W_ih), opt<T>(dx), opt<T>(dW_ih), opt<T>(db), opt<T>(dW_hh)};
    const bool q = variant == FGR;
    lstm_backward(lstm_tape<T>(xw, Hs, Cs, tanh_c, m, W_hh, W_hr, peep, batch_sizes, masks,
                               norm, variant, fgr, true),
                  truncated, ptr<T>(d_out), ptr<T>(d_h), ptr<T>(d_c), opt<T>(dG),
                  opt<T>(dh_buf), ptr<T>(dh0), ptr<T>(dc0), int(threads),
                  on ? &fused : nullptr, opt<T>(d_peep), opt<T>(d_W_hr),
                  q ? ptr<T>(fgr[2]) : nullptr, q ? ptr<T>(fgr[3]) : nullptr);
  });
}

void rnn_forward_op(const Tensor& xw, Tensor Hs, const Tensor& W_hh, const Tensor& batch_sizes,
                    std::vector<Tensor> masks, int64_t nonlinearity, int64_t threads) {
  check_all({{&xw, "xw"}, {&Hs, "Hs"}, {&W_hh, "W_hh"}}, xw);
  AT_DISPATCH_FLOATING_TYPES(xw.scalar_type(), "rnn_forward", [&] {
    rnn_forward(RNNTape<scalar_t>{xw.size(1), xw.size(2), xw.size(3), ptr<scalar_t>(xw),
                                  ptr<scalar_t>(Hs), ptr<scalar_t>(W_hh),
                                  sizes_ptr(batch_sizes), int(nonlinearity),
                                  masks_of<scalar_t>(masks, xw, {Hs.size(2)})},
                int(threads));
  });
}

void rnn_backward_op(const Tensor& xw, const Tensor& Hs, const Tensor& W_hh,
                     const Tensor& batch_sizes, std::vector<Tensor> masks,
                     int64_t nonlinearity, const Tensor& d_out,
                     const Tensor& d_h, Tensor dG, Tensor dh0, int64_t threads) {
  check_all({{&xw, "xw"}, {&Hs, "Hs"}, {&W_hh, "W_hh"}, {&d_out, "d_out"}, {&d_h, "d_h"},
             {&dG, "dG"}, {&dh0, "dh0"}}, xw);
  AT_DISPATCH_FLOATING_TYPES(xw.scalar_type(), "rnn_backward", [&] {
    rnn_backward(RNNTape<scalar_t>{xw.size(1), xw.size(2), xw.size(3), ptr<scalar_t>(xw),
                                   ptr<scalar_t>(Hs), ptr<scalar_t>(W_hh),
                                   sizes_ptr(batch_sizes), int(nonlinearity),
                                   masks_of<scalar_t>(masks, xw, {Hs.size(2)})},
                 ptr<scalar_t>(d_out), ptr<scalar_t>(d_h), ptr<scalar_t>(dG),
                 ptr<scalar_t>(dh0), int(threads));
  });
}

template <typename T>
GRUTape<T> gru_tape(const Tensor& xw, const Tensor& Hs, const Tensor& hw, const Tensor& rh,
                    const Tensor& W_hh, const Tensor& b_hh, const Tensor& batch_sizes,
                    const std::vector<Tensor>& masks, const std::vector<Tensor>& norm,
                    bool backward) {
  TORCH_CHECK(norm.empty() || hw.numel() > 0,
              "rnnlab kernels: the GRU's layer norms need the reset_after form");
  return GRUTape<T>{xw.size(1), xw.size(2), xw.size(3), ptr<T>(xw), ptr<T>(Hs), opt<T>(hw),
                    opt<T>(rh), ptr<T>(W_hh), opt<T>(b_hh), sizes_ptr(batch_sizes),
                    masks_of<T>(masks, xw, {Hs.size(2)}), norm_of<T>(norm, xw, backward, false)};
}

void gru_forward_op(Tensor xw, Tensor Hs, Tensor hw, Tensor rh, const Tensor& W_hh,
                    const Tensor& b_hh, const Tensor& batch_sizes, std::vector<Tensor> masks,
                    std::vector<Tensor> norm, int64_t threads) {
  check_all({{&xw, "xw"}, {&Hs, "Hs"}, {&hw, "hw"}, {&rh, "rh"}, {&W_hh, "W_hh"},
             {&b_hh, "b_hh"}}, xw);
  AT_DISPATCH_FLOATING_TYPES(xw.scalar_type(), "gru_forward", [&] {
    gru_forward(gru_tape<scalar_t>(xw, Hs, hw, rh, W_hh, b_hh, batch_sizes, masks, norm, false),
                int(threads));
  });
}

void gru_backward_op(const Tensor& xw, const Tensor& Hs, const Tensor& hw, const Tensor& rh,
                     const Tensor& W_hh, const Tensor& b_hh, const Tensor& batch_sizes,
                     std::vector<Tensor> masks, std::vector<Tensor> norm,
                     const Tensor& d_out, const Tensor& d_h, Tensor dG, Tensor dhw,
                     Tensor dh0, int64_t threads) {
  check_all({{&xw, "xw"}, {&Hs, "Hs"}, {&hw, "hw"}, {&rh, "rh"}, {&W_hh, "W_hh"},
             {&b_hh, "b_hh"}, {&d_out, "d_out"}, {&d_h, "d_h"}, {&dG, "dG"}, {&dhw, "dhw"},
             {&dh0, "dh0"}}, xw);
  AT_DISPATCH_FLOATING_TYPES(xw.scalar_type(), "gru_backward", [&] {
    gru_backward(gru_tape<scalar_t>(xw, Hs, hw, rh, W_hh, b_hh, batch_sizes, masks, norm, true),
                 ptr<scalar_t>(d_out), ptr<scalar_t>(d_h), ptr<scalar_t>(dG),
                 opt<scalar_t>(dhw), ptr<scalar_t>(dh0), int(threads));
  });
}

template <typename T>
LSTM1997Tape<T> lstm1997_tape(const Tensor& xw, const Tensor& Ys, const Tensor& Ss,
                              const Tensor& g_buf, const Tensor& h_buf, const Tensor& W_hh,
                              const Tensor& batch_sizes, int64_t K, int64_t S,
                              bool output_gate, bool gate_recurrence, int64_t g, int64_t h) {
  return LSTM1997Tape<T>{xw.size(1), xw.size(2), K, S, output_gate, gate_recurrence, int(g),
                         int(h), ptr<T>(xw), ptr<T>(Ys), ptr<T>(Ss), ptr<T>(g_buf),
                         ptr<T>(h_buf), opt<T>(W_hh), sizes_ptr(batch_sizes)};
}

void lstm1997_forward_op(Tensor xw, Tensor Ys, Tensor Ss, Tensor g_buf, Tensor h_buf,
                         const Tensor& W_hh, const Tensor& batch_sizes, int64_t K, int64_t S,
                         bool output_gate, bool gate_recurrence, int64_t g, int64_t h,
                         int64_t threads) {
  check_all({{&xw, "xw"}, {&Ys, "Ys"}, {&Ss, "Ss"}, {&g_buf, "g_buf"}, {&h_buf, "h_buf"},
             {&W_hh, "W_hh"}}, xw);
  AT_DISPATCH_FLOATING_TYPES(xw.scalar_type(), "lstm1997_forward", [&] {
    lstm1997_forward(lstm1997_tape<scalar_t>(xw, Ys, Ss, g_buf, h_buf, W_hh, batch_sizes, K, S,
                                             output_gate, gate_recurrence, g, h),
                     int(threads));
  });
}

void lstm1997_backward_op(const Tensor& xw, const Tensor& Ys, const Tensor& Ss,
                          const Tensor& g_buf, const Tensor& h_buf, const Tensor& W_hh,
                          const Tensor& batch_sizes, int64_t K, int64_t S, bool output_gate,
                          bool gate_recurrence, int64_t g, int64_t h, bool truncated,
                          const Tensor& d_out, const Tensor& d_y, const Tensor& d_s, Tensor dG,
                          Tensor dy0, Tensor ds0, const Tensor& x, const Tensor& W_ih,
                          Tensor dx, Tensor dW_ih, Tensor db, Tensor dW_hh, int64_t threads) {
  check_all({{&xw, "xw"}, {&Ys, "Ys"}, {&Ss, "Ss"}, {&g_buf, "g_buf"}, {&h_buf, "h_buf"},
             {&W_hh, "W_hh"}, {&d_out, "d_out"}, {&d_y, "d_y"}, {&d_s, "d_s"}, {&dG, "dG"},
             {&dy0, "dy0"}, {&ds0, "ds0"}, {&x, "x"}, {&W_ih, "W_ih"}, {&dx, "dx"},
             {&dW_ih, "dW_ih"}, {&db, "db"}, {&dW_hh, "dW_hh"}}, xw);
  AT_DISPATCH_FLOATING_TYPES(xw.scalar_type(), "lstm1997_backward", [&] {
    using T = scalar_t;
    const bool on = dW_ih.numel() > 0;
    const Fused<T> fused{on ? W_ih.size(0) : 0, on ? W_ih.size(1) : 0, Ys.size(2), opt<T>(x),
                         opt<T>(W_ih), opt<T>(dx), opt<T>(dW_ih), opt<T>(db), opt<T>(dW_hh)};
    lstm1997_backward(lstm1997_tape<T>(xw, Ys, Ss, g_buf, h_buf, W_hh, batch_sizes, K, S,
                                       output_gate, gate_recurrence, g, h),
                      truncated, ptr<T>(d_out), ptr<T>(d_y), ptr<T>(d_s), opt<T>(dG),
                      ptr<T>(dy0), ptr<T>(ds0), int(threads), on ? &fused : nullptr);
  });
}

// out = a · b + β out (+ bias) for 2-D a, b in either memory order (row- or column-major);
// or, for 3-D a (G, m, k) and out (G, m, n), the G products a[g] · b sharing b (its packing)
void mm_op(const Tensor& a, const Tensor& b, Tensor out, double beta, const Tensor& bias,
           int64_t threads) {
  const bool grouped = a.dim() == 3;
  TORCH_CHECK((a.dim() == 2 || grouped) && b.dim() == 2 && out.dim() == a.dim() &&
                  a.size(-1) == b.size(0) && out.size(-2) == a.size(-2) &&
                  out.size(-1) == b.size(1) && (!grouped || out.size(0) == a.size(0)),
              "rnnlab kernels: mm shapes");
  TORCH_CHECK(out.stride(-1) == 1, "rnnlab kernels: mm output must be row-major");
  for (const Tensor* t : std::initializer_list<const Tensor*>{&a, &b, &out}) {
    TORCH_CHECK(t->device().is_cpu() && t->scalar_type() == a.scalar_type(),
                "rnnlab kernels: mm operands must be CPU tensors of one dtype");
  }
  // (transposed?, leading dimension) of a matrix's last two dimensions
  auto layout = [](const Tensor& t, const char* name) {
    const int64_t r = t.dim() - 2, c = t.dim() - 1;
    if (t.stride(c) == 1 || t.size(c) == 1)
      return std::pair{false, std::max<int64_t>(t.stride(r), t.size(c))};
    TORCH_CHECK(t.stride(r) == 1 || t.size(r) == 1, "rnnlab kernels: mm operand ", name,
                " must be row- or column-major");
    return std::pair{true, std::max<int64_t>(t.stride(c), t.size(r))};
  };
  const auto [ta, lda] = layout(a, "a");
  const auto [tb, ldb] = layout(b, "b");
  const Groups groups{grouped ? a.size(0) : 1, grouped ? a.stride(0) : 0,
                      grouped ? out.stride(0) : 0};
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "mm", [&] {
    gemm_parallel<scalar_t>(ta, tb, a.size(-2), b.size(1), a.size(-1), scalar_t(1),
                            static_cast<const scalar_t*>(a.data_ptr()), lda,
                            static_cast<const scalar_t*>(b.data_ptr()), ldb, scalar_t(beta),
                            static_cast<scalar_t*>(out.data_ptr()), out.stride(-2), int(threads),
                            opt<scalar_t>(bias), groups);
  });
}

// The loops' per-step product on its own, for benchmarks.gemm: out[s] = A[s] Wᵀ for each
// step s, W packed once, each thread its rows of every step (as the kernels' for_rows).
void step_products_op(const Tensor& A, const Tensor& W, Tensor out, int64_t threads) {
  check(A, W, "A");
  check(out, W, "out");
  TORCH_CHECK(A.dim() == 3 && W.dim() == 2 && A.size(2) == W.size(1) &&
                  out.sizes() == at::IntArrayRef({A.size(0), A.size(1), W.size(0)}),
              "rnnlab kernels: step_products shapes");
  AT_DISPATCH_FLOATING_TYPES(W.scalar_type(), "step_products", [&] {
    using T = scalar_t;
    const i64 S = A.size(0), B = A.size(1), K = A.size(2), N = W.size(0);
    PackedB<T> packed;
    packed.pack(true, K, N, ptr<T>(W), K);
    const T* a = ptr<T>(A);
    T* c = ptr<T>(out);
    for_rows(B, int(threads), 4, [&](Rows rows) {
      const i64 n = rows.count(B);
      for (i64 s = 0; s < S; ++s)
        gemm<T>(false, n, a + (s * B + rows.first) * K, rows.stride * K, packed, T(0),
                c + (s * B + rows.first) * N, rows.stride * N);
    });
  });
}

// out[i] = value where u_i < threshold, else 0, u_i the top 24 bits of splitmix64's finaliser
// applied to seed + (i + 1)·φ (φ = 0x9E3779B97F4A7C15): a counter-based generator, so threads
// split the range freely and rnnlab/options.py reproduces the same bits with torch's integer
// ops where the kernels are off (recurrent dropout's and zoneout's masks)
template <typename T>
void fill_bernoulli(T* __restrict o, i64 n, uint64_t seed, uint64_t threshold, T value,
                    int threads) {
#pragma omp parallel for num_threads(threads) if (n > (1 << 16)) schedule(static)
  for (i64 i = 0; i < n; ++i) {
    uint64_t x = seed + uint64_t(i + 1) * 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    x ^= x >> 31;
    o[i] = (x >> 40) < threshold ? value : T(0);
  }
}

void bernoulli_mask(Tensor out, int64_t seed, int64_t threshold, double value,
                    int64_t threads) {
  TORCH_CHECK(out.device().is_cpu() && out.is_contiguous(),
              "rnnlab kernels: out must be contiguous on the CPU");
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "bernoulli_mask", [&] {
    fill_bernoulli<scalar_t>(ptr<scalar_t>(out), out.numel(), uint64_t(seed),
                             uint64_t(threshold), scalar_t(value), int(threads));
  });
}

}  // namespace
}  // namespace rnnlab

TORCH_LIBRARY(rnnlab, m) {
  m.def("online1997(Tensor(a!) W, Tensor(b!) V, Tensor W_mask, Tensor V_mask, Tensor x, "
        "Tensor targets, Tensor mask, Tensor lengths, float lr, Tensor lr_trials, "
        "int[] config, int threads) -> (Tensor, Tensor, Tensor)",
        &rnnlab::online1997_op);
  m.def("online1997_stream(Tensor(a!) W, Tensor(b!) V, Tensor W_mask, Tensor V_mask, "
        "Tensor symbols, Tensor targets, Tensor resets, Tensor lr, Tensor(c!) y, Tensor(d!) s, "
        "Tensor(e!) traces, float stop_error, float lr_decay, int[] config, int threads) "
        "-> (Tensor, Tensor, Tensor)",
        &rnnlab::online1997_stream_op);
  m.def("lstm_forward(Tensor(a!) xw, Tensor(b!) Hs, Tensor(c!) Cs, Tensor(d!) tanh_c, "
        "Tensor(e!) m, Tensor W_hh, Tensor W_hr, Tensor peep, Tensor batch_sizes, "
        "Tensor[] masks, Tensor[] norm, int variant, Tensor[] fgr, int threads) -> ()",
        &rnnlab::lstm_forward_op);
  m.def("lstm_backward(Tensor xw, Tensor Hs, Tensor Cs, Tensor tanh_c, Tensor m, Tensor W_hh, "
        "Tensor W_hr, Tensor peep, Tensor batch_sizes, Tensor[] masks, Tensor[] norm, "
        "int variant, Tensor[] fgr, bool truncated, "
        "Tensor d_out, "
        "Tensor d_h, Tensor d_c, Tensor(a!) dG, Tensor(b!) dh_buf, Tensor(c!) dh0, "
        "Tensor(d!) dc0, Tensor x, Tensor W_ih, Tensor(e!) dx, Tensor(f!) dW_ih, "
        "Tensor(g!) db, Tensor(h!) dW_hh, Tensor(i!) d_peep, Tensor(j!) d_W_hr, "
        "int threads) -> ()",
        &rnnlab::lstm_backward_op);
  m.def("bernoulli_mask(Tensor(a!) out, int seed, int threshold, float value, int threads) -> ()",
        &rnnlab::bernoulli_mask);
  m.def("mm(Tensor a, Tensor b, Tensor(a!) out, float beta, Tensor bias, int threads) -> ()",
        &rnnlab::mm_op);
  m.def("step_products(Tensor A, Tensor W, Tensor(a!) out, int threads) -> ()",
        &rnnlab::step_products_op);
  m.def("rnn_forward(Tensor xw, Tensor(a!) Hs, Tensor W_hh, Tensor batch_sizes, "
        "Tensor[] masks, int nonlinearity, int threads) -> ()",
        &rnnlab::rnn_forward_op);
  m.def("rnn_backward(Tensor xw, Tensor Hs, Tensor W_hh, Tensor batch_sizes, Tensor[] masks, "
        "int nonlinearity, "
        "Tensor d_out, Tensor d_h, Tensor(a!) dG, Tensor(b!) dh0, int threads) -> ()",
        &rnnlab::rnn_backward_op);
  m.def("gru_forward(Tensor(a!) xw, Tensor(b!) Hs, Tensor(c!) hw, Tensor(d!) rh, Tensor W_hh, "
        "Tensor b_hh, Tensor batch_sizes, Tensor[] masks, Tensor[] norm, int threads) -> ()",
        &rnnlab::gru_forward_op);
  m.def("gru_backward(Tensor xw, Tensor Hs, Tensor hw, Tensor rh, Tensor W_hh, Tensor b_hh, "
        "Tensor batch_sizes, Tensor[] masks, Tensor[] norm, Tensor d_out, Tensor d_h, "
        "Tensor(a!) dG, "
        "Tensor(b!) dhw, "
        "Tensor(c!) dh0, int threads) -> ()",
        &rnnlab::gru_backward_op);
  m.def("lstm1997_forward(Tensor(a!) xw, Tensor(b!) Ys, Tensor(c!) Ss, Tensor(d!) g_buf, "
        "Tensor(e!) h_buf, Tensor W_hh, Tensor batch_sizes, int num_blocks, int block_size, "
        "bool output_gate, bool gate_recurrence, int g, int h, int threads) -> ()",
        &rnnlab::lstm1997_forward_op);
  m.def("lstm1997_backward(Tensor xw, Tensor Ys, Tensor Ss, Tensor g_buf, Tensor h_buf, "
        "Tensor W_hh, Tensor batch_sizes, int num_blocks, int block_size, bool output_gate, "
        "bool gate_recurrence, int g, int h, bool truncated, Tensor d_out, Tensor d_y, "
        "Tensor d_s, Tensor(a!) dG, Tensor(b!) dy0, Tensor(c!) ds0, Tensor x, Tensor W_ih, "
        "Tensor(d!) dx, Tensor(e!) dW_ih, Tensor(f!) db, Tensor(g!) dW_hh, int threads) -> ()",
        &rnnlab::lstm1997_backward_op);
}
