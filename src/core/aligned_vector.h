// std::vector whose storage starts on a cache line (64 bytes).
//
// Why: buffers the AMX tile unit or wide SIMD loads stream through (bf16 weight strips, packed
// activations) lose up to half their load bandwidth when every 64-byte row straddles two lines,
// and malloc only promises 16-byte alignment.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace moe {

inline constexpr std::size_t kCacheLineBytes = 64;

template <class T>
struct CacheAlignedAllocator {
  using value_type = T;

  CacheAlignedAllocator() = default;
  template <class U>
  constexpr CacheAlignedAllocator(const CacheAlignedAllocator<U>&) noexcept {}  // NOLINT: rebinding

  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{kCacheLineBytes}));
  }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t{kCacheLineBytes}); }

  template <class U>
  bool operator==(const CacheAlignedAllocator<U>&) const noexcept {
    return true;
  }
};

template <class T>
using AlignedVector = std::vector<T, CacheAlignedAllocator<T>>;

}  // namespace moe
