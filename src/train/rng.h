// A small seeded random generator whose sequence is fixed by this code (unlike <random>'s
// distributions), and whose whole state is one integer, so checkpoints resume it exactly.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>

namespace moe::train {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed = 1) : state_(splitmix64(seed) | 1) {}

  uint64_t next_u64() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 2685821657736338717ull;
  }
  // Returns a uniform double in [0, 1).
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  // Returns a uniform integer in [0, n) (n > 0); the modulo bias is negligible for our n.
  uint64_t below(uint64_t n) { return next_u64() % n; }
  // Returns a standard normal float (Box-Muller, one value per call to keep the state simple).
  float normal() {
    const double u1 = uniform() + 0x1.0p-54;
    const double u2 = uniform();
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2));
  }

  uint64_t state() const { return state_; }
  void set_state(uint64_t state) { state_ = state; }

 private:
  uint64_t state_;
};

}  // namespace moe::train
