// Shared by every kernel: the squashing functions of the cells, written as in the Python
// cells (rnnlab/cells/*.py), which remain the specification.
#pragma once

#include <cmath>
#include <cstdint>

namespace rnnlab {

using i64 = int64_t;

// σ(a) = 1 / (1 + e^{−a}), the form torch evaluates.
template <typename T>
inline T sigmoid(T a) {
  return T(1) / (T(1) + std::exp(-a));
}

// The 1997 cell's squashers (cells/lstm1997.py SQUASHERS), by code.
enum Squash : int { kG2 = 0, kH1 = 1, kLogistic = 2, kTanh = 3, kIdentity = 4 };

template <typename T>
inline T squash(int kind, T a) {
  switch (kind) {
    case kG2: return sigmoid(a) * T(4) - T(2);  // g(x) = 4σ(x) − 2 ∈ [−2, 2]
    case kH1: return sigmoid(a) * T(2) - T(1);  // h(x) = 2σ(x) − 1 ∈ [−1, 1]
    case kLogistic: return sigmoid(a);
    case kTanh: return std::tanh(a);
    default: return a;
  }
}

// The derivative read off the output y = squash(a), as the Python cells compute it.
template <typename T>
inline T squash_prime(int kind, T y) {
  switch (kind) {
    case kG2: { T s = (y + T(2)) / T(4); return s * (T(1) - s) * T(4); }
    case kH1: { T s = (y + T(1)) / T(2); return s * (T(1) - s) * T(2); }
    case kLogistic: return y * (T(1) - y);
    case kTanh: return T(1) - y * y;
    default: return T(1);
  }
}

}  // namespace rnnlab
