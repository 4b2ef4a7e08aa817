// Vectorised expf and erff for GELU and the softmaxes. libm's expf/erff are
// calls, and with -ftrapping-math GCC will not if-convert the range clamps,
// so these are written with SSE2 intrinsics (baseline x86-64), 4 lanes:
//   vexp_ps: Cody-Waite reduction to r in [-ln2/2, ln2/2] and the Cephes expf
//            polynomial; max relative error ~1e-7 on [-87, 88] (inputs are
//            clamped to that range, so exp(-inf) -> ~1.6e-38; NaN stays NaN).
//   verf_ps: |x| >= 0.5: Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7 plus
//            fp32 rounding, ~3e-7 measured; PyTorch's vectorised erf uses the
//            same formula); |x| < 0.5: the Maclaurin series to x^13.
// vexp_f / verf_f are the scalar forms (same arithmetic, lane 0).
#ifndef DP_BACKEND_CPU_VEXP_H
#define DP_BACKEND_CPU_VEXP_H
#include <emmintrin.h>
#include <stdint.h>

static inline __m128 vexp_ps(__m128 x) {
  // maxps/minps return the second operand when either is NaN: keep NaN in x.
  x = _mm_min_ps(_mm_set1_ps(88.0f), _mm_max_ps(_mm_set1_ps(-87.0f), x));
  __m128i n = _mm_cvtps_epi32(_mm_mul_ps(x, _mm_set1_ps(1.44269504088896341f)));   // round(x / ln2)
  __m128 fn = _mm_cvtepi32_ps(n);
  __m128 r = _mm_sub_ps(x, _mm_mul_ps(fn, _mm_set1_ps(0.693359375f)));
  r = _mm_add_ps(r, _mm_mul_ps(fn, _mm_set1_ps(2.12194440e-4f)));   // x - n ln2, two parts
  __m128 p = _mm_set1_ps(1.9875691500e-4f);
  p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(1.3981999507e-3f));
  p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(8.3334519073e-3f));
  p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(4.1665795894e-2f));
  p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(1.6666665459e-1f));
  p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(5.0000001201e-1f));
  p = _mm_add_ps(_mm_add_ps(_mm_mul_ps(_mm_mul_ps(p, r), r), r), _mm_set1_ps(1.0f));
  __m128i bits = _mm_slli_epi32(_mm_add_epi32(n, _mm_set1_epi32(127)), 23);   // 2^n, n in [-126, 127]
  return _mm_mul_ps(p, _mm_castsi128_ps(bits));
}

static inline __m128 verf_ps(__m128 x) {
  const __m128 sign = _mm_set1_ps(-0.0f);
  __m128 a = _mm_andnot_ps(sign, x);   // |x|
  __m128 t = _mm_div_ps(_mm_set1_ps(1.0f), _mm_add_ps(_mm_set1_ps(1.0f), _mm_mul_ps(_mm_set1_ps(0.3275911f), a)));
  __m128 p = _mm_set1_ps(1.061405429f);
  p = _mm_add_ps(_mm_mul_ps(p, t), _mm_set1_ps(-1.453152027f));
  p = _mm_add_ps(_mm_mul_ps(p, t), _mm_set1_ps(1.421413741f));
  p = _mm_add_ps(_mm_mul_ps(p, t), _mm_set1_ps(-0.284496736f));
  p = _mm_add_ps(_mm_mul_ps(p, t), _mm_set1_ps(0.254829592f));
  __m128 e = _mm_sub_ps(_mm_set1_ps(1.0f), _mm_mul_ps(_mm_mul_ps(p, t), vexp_ps(_mm_xor_ps(sign, _mm_mul_ps(a, a)))));
  e = _mm_or_ps(e, _mm_and_ps(sign, x));   // odd extension (e >= 0 here)
  // 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1)), n = 0..6.
  __m128 z = _mm_mul_ps(x, x), q = _mm_set1_ps(-1.0f / 9360.0f);
  q = _mm_add_ps(_mm_mul_ps(q, z), _mm_set1_ps(1.0f / 1320.0f));
  q = _mm_add_ps(_mm_mul_ps(q, z), _mm_set1_ps(-1.0f / 216.0f));
  q = _mm_add_ps(_mm_mul_ps(q, z), _mm_set1_ps(1.0f / 42.0f));
  q = _mm_add_ps(_mm_mul_ps(q, z), _mm_set1_ps(-1.0f / 10.0f));
  q = _mm_add_ps(_mm_mul_ps(q, z), _mm_set1_ps(1.0f / 3.0f));
  q = _mm_sub_ps(_mm_set1_ps(1.0f), _mm_mul_ps(q, z));
  __m128 s = _mm_mul_ps(_mm_mul_ps(_mm_set1_ps(1.1283791670955126f), x), q);
  __m128 small = _mm_cmplt_ps(a, _mm_set1_ps(0.5f));
  return _mm_or_ps(_mm_and_ps(small, s), _mm_andnot_ps(small, e));
}

// y[j] = exp(x[j] - shift) for j < n (y may alias x); returns sum_j y[j]
// (accumulated in 4 fp32 lanes, then in double).
static inline double vexp_shift_sum(const float *x, float *y, int64_t n, float shift) {
  __m128 acc = _mm_setzero_ps(), sh = _mm_set1_ps(shift);
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    __m128 e = vexp_ps(_mm_sub_ps(_mm_loadu_ps(x + j), sh));
    _mm_storeu_ps(y + j, e);
    acc = _mm_add_ps(acc, e);
  }
  float l[4];
  _mm_storeu_ps(l, acc);
  double s = (double)l[0] + l[1] + l[2] + l[3];
  for (; j < n; j++) {
    y[j] = _mm_cvtss_f32(vexp_ps(_mm_set_ss(x[j] - shift)));
    s += y[j];
  }
  return s;
}

static inline float vexp_f(float x) { return _mm_cvtss_f32(vexp_ps(_mm_set_ss(x))); }
static inline float verf_f(float x) { return _mm_cvtss_f32(verf_ps(_mm_set_ss(x))); }
#endif
