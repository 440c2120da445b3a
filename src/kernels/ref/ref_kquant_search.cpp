// Scale searches of the K-quant reference quantizers. Every float expression keeps ggml's
// operand order and types (ints promoted to float where ggml's are), since a single differently
// rounded sum can flip a search decision and change the output bytes.
#include "kernels/ref/ref_kquant_search.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace moe::kernels::ref {

namespace {

constexpr float kGroupMaxEps = 1e-15f;  // below this amax a group counts as all zero

int clamp_int(int v, int lo, int hi) { return std::max(lo, std::min(hi, v)); }

// Returns the element of largest magnitude with its sign (first wins ties) and its magnitude.
float signed_absmax(int n, const float* x, float* amax_out) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  *amax_out = amax;
  return max;
}

// Weighted sums sum w x l and sum w l^2 of the levels iscale * x gives (w = x^2).
void signed_level_sums(int n, int nmax, const float* x, float iscale, float* sumlx, float* suml2) {
  *sumlx = 0.0f;
  *suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    const float w = x[i] * x[i];
    *sumlx += w * x[i] * static_cast<float>(l);
    *suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
}

void store_signed_levels(int n, int nmax, const float* x, float iscale, int8_t* levels) {
  for (int i = 0; i < n; ++i) {
    const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    levels[i] = static_cast<int8_t>(nmax + l);
  }
}

// Weighted error of levels under (scale, min): sum w |e| or sum w e^2, e = scale L + min - x.
float affine_error(int n, const float* x, const float* weights, const uint8_t* levels, float scale,
                   float min, bool use_mad) {
  float error = 0.0f;
  for (int i = 0; i < n; ++i) {
    float diff = scale * static_cast<float>(levels[i]) + min - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    error += weights[i] * diff;
  }
  return error;
}

}  // namespace

int nearest_int(float v) {
  const float shifted = v + 12582912.f;  // 1.5 * 2^23: the integer lands in the low mantissa bits
  int32_t bits;
  std::memcpy(&bits, &shifted, 4);
  return (bits & 0x007fffff) - 0x00400000;
}

float search_signed_scale(int n, int nmax, const float* x, int8_t* levels) {
  float amax;
  const float max = signed_absmax(n, x, &amax);
  if (amax < kGroupMaxEps) {
    std::fill(levels, levels + n, int8_t{0});
    return 0.0f;
  }
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx, suml2;
  signed_level_sums(n, nmax, x, iscale, &sumlx, &suml2);
  store_signed_levels(n, nmax, x, iscale, levels);
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  // Nudge the inverse scale by +-0.1..0.9 levels; keep whichever maximises sumlx^2 / suml2.
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    signed_level_sums(n, nmax, x, iscale, &sumlx, &suml2);
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      store_signed_levels(n, nmax, x, iscale, levels);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

float search_q3_scale(int n, int nmax, const float* x, int8_t* levels) {
  float amax;
  const float max = signed_absmax(n, x, &amax);
  if (amax < kGroupMaxEps) {
    std::fill(levels, levels + n, int8_t{0});
    return 0.0f;
  }
  const float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0.0f, suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    levels[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  // Coordinate descent: move one level to its optimum for the others' fit, if that helps.
  for (int pass = 0; pass < 5; ++pass) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      const float li = static_cast<float>(levels[i]);
      float slx = sumlx - w * x[i] * li;
      if (!(slx > 0)) continue;  // (NaN skips, as in ggml)
      float sl2 = suml2 - w * li * li;
      const int new_l = clamp_int(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
      if (new_l == levels[i]) continue;
      slx += w * x[i] * static_cast<float>(new_l);
      sl2 += w * static_cast<float>(new_l) * static_cast<float>(new_l);
      if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
        levels[i] = static_cast<int8_t>(new_l);
        sumlx = slx;
        suml2 = sl2;
        ++n_changed;
      }
    }
    if (n_changed == 0) break;
  }
  for (int i = 0; i < n; ++i) levels[i] = static_cast<int8_t>(levels[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// Long because it is one search loop whose state (best error, scale, min) must stay together.
float search_affine_scale(int n, int nmax, const float* x, const float* weights, uint8_t* levels,
                          float* min_out, uint8_t* scratch, AffineSearch params) {
  float min = x[0];
  float max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += weights[i];
    sum_x += weights[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::fill(levels, levels + n, uint8_t{0});
    *min_out = -min;
    return 0.0f;
  }
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1 / iscale;
  for (int i = 0; i < n; ++i) {
    levels[i] = static_cast<uint8_t>(clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax));
  }
  float best_error = affine_error(n, x, weights, levels, scale, min, params.use_mad);
  if (params.nstep < 1) {
    *min_out = -min;
    return scale;
  }
  for (int is = 0; is <= params.nstep; ++is) {
    iscale = (params.rmin + params.rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax);
      scratch[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      const float lf = static_cast<float>(l);
      sum_l += w * lf;
      sum_l2 += w * lf * lf;
      sum_xl += w * lf * x[i];
    }
    // Least-squares fit of x ~= scale L + min for these levels.
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (!(det > 0)) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    if (this_min > 0) {
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    const float error = affine_error(n, x, weights, scratch, this_scale, this_min, params.use_mad);
    if (error < best_error) {
      std::copy(scratch, scratch + n, levels);
      best_error = error;
      scale = this_scale;
      min = this_min;
    }
  }
  *min_out = -min;
  return scale;
}

}  // namespace moe::kernels::ref
