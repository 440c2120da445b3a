#include "formats/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

namespace moe::formats {

namespace {

// Closes the descriptor on every exit path of open(); the mapping outlives it.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Result<MappedFile> MappedFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error("cannot open '{}': {}", path, std::strerror(errno));
  FdCloser closer{fd};

  struct stat st {};
  if (::fstat(fd, &st) != 0) return make_error("cannot stat '{}': {}", path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return make_error("cannot map '{}': not a regular file", path);

  MappedFile file;
  file.path_ = path;
  file.size_ = static_cast<size_t>(st.st_size);
  if (file.size_ == 0) return file;  // mmap rejects length 0; an empty file maps to nothing

  // No madvise here: callers know the access pattern (a dense model reads every tensor once in
  // order; an expert store touches a few experts at random), so any blanket hint would be wrong
  // for one of them. They advise their own ranges.
  void* addr = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd, 0);
  if (addr == MAP_FAILED) return make_error("cannot mmap '{}' ({} bytes): {}", path, file.size_, std::strerror(errno));
  file.data_ = static_cast<const uint8_t*>(addr);
  return file;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      path_(std::move(other.path_)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    path_ = std::move(other.path_);
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

bool populate_read(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return true;
  // The whole range is about to be read and kept: ask for 2 MiB folios where the page cache
  // still has to read it (ext4 maps those with one TLB entry). Expert rows are read in scattered
  // pieces; with 4 KiB pages the kernel lab's cold decode ran 20% slower on TLB walks. Advisory:
  // failure changes nothing.
  const auto page_size = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto first_page = reinterpret_cast<uintptr_t>(bytes.data()) / page_size * page_size;
  ::madvise(reinterpret_cast<void*>(first_page), reinterpret_cast<uintptr_t>(bytes.data()) - first_page + bytes.size(),
            MADV_HUGEPAGE);
#ifdef MADV_POPULATE_READ
  if (::madvise(const_cast<uint8_t*>(bytes.data()), bytes.size(), MADV_POPULATE_READ) == 0) return true;
#endif
  volatile uint8_t sink = 0;
  for (size_t offset = 0; offset < bytes.size(); offset += page_size) sink = sink + bytes[offset];
  return false;
}

}  // namespace moe::formats
