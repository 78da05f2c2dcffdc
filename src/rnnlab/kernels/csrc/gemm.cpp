#include "gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

namespace rnnlab {
namespace {

// The register tile for the vectors this build targets (-march=native).
// Two tile heights: the tall one fills the registers; the short one (two thirds of it) fits
// the per-step products, whose few rows (a thread's share of the batch: 16, 32) are multiples
// of 8 and would leave a third of a 12-row tile empty. With AVX-512 the 8-row tile (2 × 8
// accumulators of 16 floats) is the only one: on the project's AMD Zen 5 machine it beat the
// 12-row tile on every product measured, tall ones included (2–14 %, 2026-12-08).
#if defined(__AVX512F__)
constexpr int kBytes = 64, kMR = 8, kShortMR = 8;
#elif defined(__AVX__)
constexpr int kBytes = 32, kMR = 6, kShortMR = 4;
#else
constexpr int kBytes = 16, kMR = 4, kShortMR = 2;
#endif
constexpr i64 kKC = 256;  // rows of op(B) per packed block: a panel stays in L1
constexpr i64 kMC = 264;  // rows of op(A) per packed block, a multiple of 8 and 12: in L2
constexpr i64 kNC = 512;  // columns of op(B) per packed block (floats; half for doubles): in L2

template <typename T>
struct Tile {
  typedef T vec __attribute__((vector_size(kBytes)));
  typedef T uvec __attribute__((vector_size(kBytes), aligned(sizeof(T))));  // unaligned
  static constexpr int width = kBytes / sizeof(T), MR = kMR, NR = 2 * width;
};

// The tile height for m rows: the one that pads fewer rows (the taller on a tie).
inline int tile_rows(i64 m) {
  auto padded = [m](int mr) { return (m + mr - 1) / mr * mr; };
  return padded(kShortMR) < padded(kMR) ? kShortMR : kMR;
}

// C[rows × cols] (≤ MR × NR) = acc + β C, acc = Σ_k a[k] ⊗ b[k] over packed tiles
template <typename T, int MR>
void micro(i64 kc, const T* __restrict a, const T* __restrict b, T* __restrict c, i64 ldc,
           T beta, int rows, int cols, bool add, const T* __restrict bias) {
  using V = Tile<T>;
  using vec = typename V::vec;
  constexpr int W = V::width, NR = V::NR;
  vec acc[MR][2];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = vec{};
  for (i64 k = 0; k < kc; ++k) {
    const vec b0 = *reinterpret_cast<const typename V::uvec*>(b + k * NR);
    const vec b1 = *reinterpret_cast<const typename V::uvec*>(b + k * NR + W);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const T s = a[k * MR + i];
      acc[i][0] += s * b0;
      acc[i][1] += s * b1;
    }
  }
  if (bias && !add) {  // + a row vector, with the first block of the shared dimension
    vec b0, b1;
    std::memcpy(&b0, bias, std::min<int>(cols, W) * sizeof(T));
    if (cols > W) std::memcpy(&b1, bias + W, (cols - W) * sizeof(T));
    for (int i = 0; i < MR; ++i) {
      acc[i][0] += b0;
      if (cols > W) acc[i][1] += b1;
    }
  }
  if (rows == MR && cols == NR) {
    using uvec = typename V::uvec;
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      uvec* c0 = reinterpret_cast<uvec*>(c + i * ldc);
      uvec* c1 = reinterpret_cast<uvec*>(c + i * ldc + W);
      if (add) {
        *c0 += acc[i][0];
        *c1 += acc[i][1];
      } else if (beta == T(0)) {
        *c0 = acc[i][0];
        *c1 = acc[i][1];
      } else {
        *c0 = acc[i][0] + beta * *c0;
        *c1 = acc[i][1] + beta * *c1;
      }
    }
    return;
  }
  T tile[MR * NR];  // an edge tile: only its valid part is written
  for (int i = 0; i < MR; ++i) {
    std::memcpy(tile + i * NR, &acc[i][0], sizeof(vec));
    std::memcpy(tile + i * NR + W, &acc[i][1], sizeof(vec));
  }
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) {
      T& out = c[i * ldc + j];
      out = add ? out + tile[i * NR + j]
                : (beta == T(0) ? tile[i * NR + j] : tile[i * NR + j] + beta * out);
    }
}

// op(A) rows [0, mc) × cols [p0, p0 + kc) into MR-row tiles, k-major, zero-padded. Full
// tiles take loops of fixed width, which the compiler turns into vector moves.
template <typename T, int MR>
void pack_a(bool ta, i64 mc, i64 kc, const T* A, i64 lda, i64 i0, i64 p0, T* out) {
  for (i64 t = 0; t < (mc + MR - 1) / MR; ++t) {
    T* __restrict dst = out + t * kc * MR;
    const int rows = int(std::min<i64>(MR, mc - t * MR));
    const i64 r0 = i0 + t * MR;
    if (ta && rows == MR) {  // op(A)'s tile rows lie side by side in each row p of A
      for (i64 k = 0; k < kc; ++k) {
        const T* __restrict src = A + (p0 + k) * lda + r0;
#pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) dst[k * MR + i] = src[i];
      }
    } else if (rows == MR) {  // MR rows of A, read side by side
      const T* __restrict src = A + r0 * lda + p0;
      for (i64 k = 0; k < kc; ++k) {
#pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) dst[k * MR + i] = src[i * lda + k];
      }
    } else {  // the last tile, zero-padded
      for (i64 k = 0; k < kc; ++k)
        for (int i = 0; i < MR; ++i)
          dst[k * MR + i] =
              i >= rows ? T(0) : ta ? A[(p0 + k) * lda + r0 + i] : A[(r0 + i) * lda + p0 + k];
    }
  }
}

template <typename T>
i64 panels(i64 n) {
  return (n + Tile<T>::NR - 1) / Tile<T>::NR;
}

// the product over packed B for rows [0, m) of op(A), in tiles of MR rows; `accumulate`:
// C += the product (β and the bias ignored)
template <typename T, int MR>
void run_tiles(bool ta, i64 m, const T* A, i64 lda, const PackedB<T>& B, T beta, T* C,
               i64 ldc, const T* bias, bool accumulate) {
  constexpr int NR = Tile<T>::NR;
  const i64 n = B.n, k = B.k, np = panels<T>(n);
  thread_local std::vector<T> buffer;
  buffer.resize(std::size_t(kMC * kKC + 64 / sizeof(T)));
  T* Ap = PackedB<T>::aligned(buffer.data());
  for (i64 p0 = 0; p0 < k; p0 += kKC) {
    const i64 kc = std::min(kKC, k - p0);
    const T* Bblock = B.start() + p0 * np * NR;
    for (i64 i0 = 0; i0 < m; i0 += kMC) {
      const i64 mc = std::min(kMC, m - i0);
      pack_a<T, MR>(ta, mc, kc, A, lda, i0, p0, Ap);
      for (i64 j = 0; j < np; ++j) {
        const int cols = int(std::min<i64>(NR, n - j * NR));
        const T* bp = Bblock + j * kc * NR;
        for (i64 t = 0; t < (mc + MR - 1) / MR; ++t) {
          const int rows = int(std::min<i64>(MR, mc - t * MR));
          micro<T, MR>(kc, Ap + t * kc * MR, bp, C + (i0 + t * MR) * ldc + j * NR, ldc, beta,
                       rows, cols, accumulate || p0 > 0, bias ? bias + j * NR : nullptr);
        }
      }
    }
  }
}

template <typename T>
void run(bool ta, i64 m, const T* A, i64 lda, const PackedB<T>& B, T beta, T* C, i64 ldc,
         const T* bias = nullptr, bool accumulate = false) {
  const i64 n = B.n;
  if (B.k == 0) {  // an empty sum
    if (accumulate) return;
    for (i64 i = 0; i < m; ++i)
      for (i64 j = 0; j < n; ++j)
        C[i * ldc + j] = (beta == T(0) ? T(0) : beta * C[i * ldc + j]) + (bias ? bias[j] : T(0));
    return;
  }
  if (tile_rows(m) == kShortMR)
    run_tiles<T, kShortMR>(ta, m, A, lda, B, beta, C, ldc, bias, accumulate);
  else
    run_tiles<T, kMR>(ta, m, A, lda, B, beta, C, ldc, bias, accumulate);
}

}  // namespace

template <typename T>
void PackedB<T>::pack(bool tb, i64 k_, i64 n_, const T* B, i64 ldb, T alpha) {
  constexpr int NR = Tile<T>::NR;
  k = k_;
  n = n_;
  const i64 np = panels<T>(n);
  // (+ room to start on a cache line; a thread's reused block keeps its capacity)
  data.resize(std::size_t(k * np * NR + 64 / sizeof(T)));
  for (i64 p0 = 0; p0 < k; p0 += kKC) {  // blocks of kKC rows, each as np panels
    const i64 kc = std::min(kKC, k - p0);
    T* block = aligned(data.data()) + p0 * np * NR;
    for (i64 j = 0; j < np; ++j) {
      T* __restrict panel = block + j * kc * NR;
      const int cols = int(std::min<i64>(NR, n - j * NR));
      if (tb) {  // column j·NR + jj of op(B) is row j·NR + jj of B: read along it
        for (int jj = 0; jj < cols; ++jj) {
          const T* __restrict src = B + (j * NR + jj) * ldb + p0;
          for (i64 p = 0; p < kc; ++p) panel[p * NR + jj] = alpha * src[p];
        }
      } else {
        for (i64 p = 0; p < kc; ++p) {
          const T* __restrict src = B + (p0 + p) * ldb + j * NR;
          for (int jj = 0; jj < cols; ++jj) panel[p * NR + jj] = alpha * src[jj];
        }
      }
      if (cols < NR)  // the last panel's padding
        for (i64 p = 0; p < kc; ++p)
          for (int jj = cols; jj < NR; ++jj) panel[p * NR + jj] = T(0);
    }
  }
}

template <typename T>
void gemm(bool ta, i64 m, const T* A, i64 lda, const PackedB<T>& B, T beta, T* C, i64 ldc) {
  if (m > 0 && B.n > 0) run(ta, m, A, lda, B, beta, C, ldc);
}

// One block of op(B) at a time (kKC rows × kNC columns, packed into a buffer each thread
// keeps): the block stays in L2 while every row of op(A) (of every group) passes over it, and
// no call allocates or packs all of B (a weight gradient's B is every step's input:
// megabytes).
template <typename T>
void gemm(bool ta, bool tb, i64 m, i64 n, i64 k, T alpha, const T* A, i64 lda, const T* B,
          i64 ldb, T beta, T* C, i64 ldc, const T* bias, Groups groups) {
  if (m == 0 || n == 0) return;
  thread_local PackedB<T> block;
  if (k == 0) {
    block.pack(tb, 0, n, B, ldb, alpha);
    for (i64 g = 0; g < groups.count; ++g)
      run(ta, m, A + g * groups.a, lda, block, beta, C + g * groups.c, ldc, bias);
    return;
  }
  constexpr i64 nc_max = kNC * sizeof(float) / sizeof(T) / Tile<T>::NR * Tile<T>::NR;
  for (i64 j0 = 0; j0 < n; j0 += nc_max) {
    const i64 nc = std::min(nc_max, n - j0);
    for (i64 p0 = 0; p0 < k; p0 += kKC) {
      const i64 kc = std::min(kKC, k - p0);
      block.pack(tb, kc, nc, tb ? B + j0 * ldb + p0 : B + p0 * ldb + j0, ldb, alpha);
      for (i64 g = 0; g < groups.count; ++g)
        run(ta, m, A + g * groups.a + (ta ? p0 * lda : p0), lda, block, beta,
            C + g * groups.c + j0, ldc, bias ? bias + j0 : nullptr, p0 > 0);
    }
  }
}

template <typename T>
void gemm_parallel(bool ta, bool tb, i64 m, i64 n, i64 k, T alpha, const T* A, i64 lda,
                   const T* B, i64 ldb, T beta, T* C, i64 ldc, int threads, const T* bias,
                   Groups groups) {
  constexpr int MR = Tile<T>::MR, NR = Tile<T>::NR;
  if (threads <= 1 || m * n * k * groups.count < 4096 * 64) {
    gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, bias, groups);
    return;
  }
  if (k >= 4 * std::max(m * groups.count, n)) {
    // a long shared dimension (a weight gradient, summed over every step and sequence):
    // each thread takes a share of it, so no operand is packed twice; then the sum
    const int nt = int(std::min<i64>(threads, k / kKC + 1));
    const i64 size = m * n;  // of one group's part
    std::vector<std::vector<T>> part(nt);
#pragma omp parallel num_threads(nt)
    {
      const int id = omp_get_thread_num();
      const i64 p0 = k * id / nt, p1 = k * (id + 1) / nt;
      part[id].resize(std::size_t(size * groups.count));
      gemm(ta, tb, m, n, p1 - p0, alpha, ta ? A + p0 * lda : A + p0, lda,
           tb ? B + p0 : B + p0 * ldb, ldb, T(0), part[id].data(), n,
           static_cast<const T*>(nullptr), Groups{groups.count, groups.a, size});
    }
    for (i64 g = 0; g < groups.count; ++g) {
      T* Cg = C + g * groups.c;
      for (i64 i = 0; i < m; ++i)
        for (i64 j = 0; j < n; ++j) {
          T sum = beta == T(0) ? T(0) : beta * Cg[i * ldc + j];
          if (bias) sum += bias[j];
          for (int id = 0; id < nt; ++id) sum += part[id][g * size + i * n + j];
          Cg[i * ldc + j] = sum;
        }
    }
    return;
  }
  const bool by_rows = m >= n;  // each thread: its rows (or columns) of every group
  const i64 units = by_rows ? (m + MR - 1) / MR : (n + NR - 1) / NR;
  const int nt = int(std::max<i64>(1, std::min<i64>(threads, units)));
#pragma omp parallel num_threads(nt)
  {
    const int id = omp_get_thread_num();
    const i64 u0 = units * id / nt, u1 = units * (id + 1) / nt;
    if (by_rows) {
      const i64 r0 = u0 * MR, r1 = std::min(m, u1 * MR);
      if (r1 > r0)
        gemm(ta, tb, r1 - r0, n, k, alpha, ta ? A + r0 : A + r0 * lda, lda, B, ldb, beta,
             C + r0 * ldc, ldc, bias, groups);
    } else {
      const i64 c0 = u0 * NR, c1 = std::min(n, u1 * NR);
      if (c1 > c0)
        gemm(ta, tb, m, c1 - c0, k, alpha, A, lda, tb ? B + c0 * ldb : B + c0, ldb, beta,
             C + c0, ldc, bias ? bias + c0 : nullptr, groups);
    }
  }
}

#define RNNLAB_GEMM(T)                                                                     \
  template struct PackedB<T>;                                                              \
  template void gemm<T>(bool, i64, const T*, i64, const PackedB<T>&, T, T*, i64);          \
  template void gemm<T>(bool, bool, i64, i64, i64, T, const T*, i64, const T*, i64, T, T*, \
                        i64, const T*, Groups);                                            \
  template void gemm_parallel<T>(bool, bool, i64, i64, i64, T, const T*, i64, const T*,    \
                                 i64, T, T*, i64, int, const T*, Groups);
RNNLAB_GEMM(float)
RNNLAB_GEMM(double)

}  // namespace rnnlab
