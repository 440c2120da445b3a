// One read-only mmap of a whole file. Every consumer checks offsets against size() before use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "core/result.h"

namespace moe::formats {

class MappedFile {
 public:
  // Maps `path` read-only. Returns an error naming the path and errno text on failure.
  // An empty file maps to data() == nullptr, size() == 0.
  static Result<MappedFile> open(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// Faults in the page-table entries of `bytes` (part of a mapping, page-aligned start) for
// reading, as MAP_POPULATE would at map time: afterwards first use costs no page faults (the data
// must still come from disk if it is not in the page cache). Returns false if the kernel
// refused (MADV_POPULATE_READ needs Linux 5.14); pages are then touched one by one instead.
bool populate_read(std::span<const uint8_t> bytes);

}  // namespace moe::formats
