// The kernels as torch operators (torch.ops.rnnlab.*). The Python callers (engine.py,
// online.py) hand over contiguous CPU tensors of one floating dtype; this file only checks
// that, unpacks pointers and sizes, and dispatches on the dtype.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include <utility>

#include "online1997.h"

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

void online1997_op(Tensor W, Tensor V, const Tensor& W_mask, const Tensor& V_mask,
                   const Tensor& x, const Tensor& symbols, const Tensor& targets,
                   const Tensor& mask, const Tensor& target_steps, const Tensor& lengths,
                   const Tensor& lr, Tensor outputs, Tensor grad_W, Tensor grad_V,
                   int64_t input_size, int64_t num_blocks, int64_t block_size, bool output_gate,
                   bool gate_recurrence, int64_t g, int64_t h, bool sees_input, int64_t update,
                   bool outputs_all, bool has_targets, bool need_grad, int64_t threads) {
  using Named = std::pair<const Tensor*, const char*>;
  for (const Named& a : {Named{&W, "W"}, Named{&V, "V"}, Named{&W_mask, "W_mask"},
                         Named{&V_mask, "V_mask"}, Named{&lr, "lr"}, Named{&outputs, "outputs"},
                         Named{&grad_W, "grad_W"}, Named{&grad_V, "grad_V"}})
    check(*a.first, W, a.second);
  const bool dense = symbols.numel() == 0;
  if (dense) check(x, W, "x");
  check_index(dense ? lengths : symbols, "symbols");
  check_index(lengths, "lengths");
  if (has_targets) {
    check(targets, W, "targets");
    check(mask, W, "mask");
  }
  TORCH_CHECK(target_steps.scalar_type() == at::kByte && target_steps.is_contiguous(),
              "rnnlab kernels: target_steps must be contiguous uint8");
  TORCH_CHECK(outputs.dim() == 5 && W.dim() == 3 && V.dim() == 3, "rnnlab kernels: bad ranks");
  OnlineDims d{outputs.size(0), outputs.size(1), outputs.size(2), outputs.size(3),
               input_size, num_blocks, block_size, output_gate, gate_recurrence,
               sees_input, int(g), int(h), V.size(1), int(update), outputs_all, has_targets,
               need_grad};
  const auto* steps = static_cast<const uint8_t*>(target_steps.data_ptr());
  const auto* sym = dense ? nullptr : symbols.data_ptr<int64_t>();
  const auto* len = lengths.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(W.scalar_type(), "online1997", [&] {
    online1997_run<scalar_t>(d, ptr<scalar_t>(W), ptr<scalar_t>(V), ptr<scalar_t>(W_mask),
                             ptr<scalar_t>(V_mask), dense ? ptr<scalar_t>(x) : nullptr, sym,
                             ptr<scalar_t>(targets), ptr<scalar_t>(mask), steps, len,
                             ptr<scalar_t>(lr), ptr<scalar_t>(outputs), ptr<scalar_t>(grad_W),
                             ptr<scalar_t>(grad_V), int(threads));
  });
}

}  // namespace
}  // namespace rnnlab

TORCH_LIBRARY(rnnlab, m) {
  m.def("online1997(Tensor(a!) W, Tensor(b!) V, Tensor W_mask, Tensor V_mask, Tensor x, "
        "Tensor symbols, Tensor targets, Tensor mask, Tensor target_steps, Tensor lengths, "
        "Tensor lr, Tensor(c!) outputs, Tensor(d!) grad_W, Tensor(e!) grad_V, int input_size, "
        "int num_blocks, "
        "int block_size, bool output_gate, bool gate_recurrence, int g, int h, "
        "bool sees_input, int update, bool outputs_all, bool has_targets, bool need_grad, "
        "int threads) -> ()",
        &rnnlab::online1997_op);
}
