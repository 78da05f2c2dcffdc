// Matrix products for the kernels, row-major: C (m×n) = α·op(A)·op(B) + β·C, op(X) = X or Xᵀ.
//
// Written here rather than taken from the BLAS torch links: on this project's AMD machines
// MKL runs its AVX2 code (~95 GFLOP/s a core) where AVX-512 doubles the rate. The method is
// the usual one (Goto, BLIS): op(B) is packed into panels of NR columns, op(A) into tiles of
// MR rows, and a micro-kernel keeps an MR×NR block of C in vector registers while it walks
// the shared dimension. The recurrent weights are packed once per sequence (PackedB) and
// reused at every step.
#pragma once

#include <cstdint>
#include <vector>

namespace rnnlab {

using i64 = int64_t;

// op(B) (k × n) packed for repeated products.
template <typename T>
struct PackedB {
  i64 k = 0, n = 0;
  std::vector<T> data;  // the panels start at the first cache-line boundary in it (`start`)
  void pack(bool trans_b, i64 k, i64 n, const T* B, i64 ldb, T alpha = T(1));
  const T* start() const { return aligned(data.data()); }
  // the first 64-byte boundary at or after p: a panel row's vector loads then never
  // straddle two cache lines
  static T* aligned(const T* p) {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    return reinterpret_cast<T*>((a + 63) & ~std::uintptr_t(63));
  }
};

// Several products sharing op(B): C_g = α op(A_g) op(B) + β C_g for g < count, with
// A_g = A + g·a and C_g = C + g·c (elements). op(B) is packed once for all of them: the
// weight gradients of a gate-major tape, δa_gᵀ x for each gate g, share x.
struct Groups {
  i64 count = 1, a = 0, c = 0;
};

// C = α op(A) op(B) + β C (+ bias, a row added to every row of C) on the calling thread.
// β = 0 never reads C.
template <typename T>
void gemm(bool trans_a, bool trans_b, i64 m, i64 n, i64 k, T alpha, const T* A, i64 lda,
          const T* B, i64 ldb, T beta, T* C, i64 ldc, const T* bias = nullptr,
          Groups groups = {});

// C = op(A) · B + β C with B packed.
template <typename T>
void gemm(bool trans_a, i64 m, const T* A, i64 lda, const PackedB<T>& B, T beta, T* C,
          i64 ldc);

// As gemm, on up to `threads` threads: the larger of m and n is split, or, when the shared
// dimension is much longer than both, the shared dimension.
template <typename T>
void gemm_parallel(bool trans_a, bool trans_b, i64 m, i64 n, i64 k, T alpha, const T* A,
                   i64 lda, const T* B, i64 ldb, T beta, T* C, i64 ldc, int threads,
                   const T* bias = nullptr, Groups groups = {});

}  // namespace rnnlab
