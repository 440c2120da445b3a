#include "formats/mapped_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "formats/gguf.h"
#include "gguf_test_util.h"

namespace moe::formats {
namespace {

using ::testing::HasSubstr;
using testing_util::ScratchDir;

void write_file(const std::string& path, std::string_view contents) {
  std::ofstream out(path, std::ios::binary);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
}

TEST(MappedFileTest, MapsContents) {
  ScratchDir dir;
  const std::string path = dir.file("a.bin");
  write_file(path, "hello mmap");
  Result<MappedFile> file = MappedFile::open(path);
  ASSERT_TRUE(file.ok()) << file.error().message;
  ASSERT_EQ(file->size(), 10u);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(file->data()), file->size()), "hello mmap");
  EXPECT_EQ(file->path(), path);
}

// Populating a multi-page mapping (and an empty range) leaves its contents as they were; on
// this kernel (>= 5.14) it goes through MADV_POPULATE_READ.
TEST(MappedFileTest, PopulateReadKeepsContents) {
  ScratchDir dir;
  const std::string path = dir.file("pages.bin");
  std::string contents(3 * 4096 + 123, '\0');
  for (size_t i = 0; i < contents.size(); ++i) contents[i] = static_cast<char>(i * 7);
  write_file(path, contents);
  Result<MappedFile> file = MappedFile::open(path);
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_TRUE(populate_read({file->data(), file->size()}));
  EXPECT_TRUE(populate_read({}));
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(file->data()), file->size()), contents);
}

TEST(MappedFileTest, EmptyFileMapsToNothing) {
  ScratchDir dir;
  const std::string path = dir.file("empty.bin");
  write_file(path, "");
  Result<MappedFile> file = MappedFile::open(path);
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_EQ(file->size(), 0u);
  EXPECT_EQ(file->data(), nullptr);
}

TEST(MappedFileTest, MissingFileNamesPathAndReason) {
  ScratchDir dir;
  const std::string path = dir.file("does_not_exist.gguf");
  Result<MappedFile> file = MappedFile::open(path);
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(file.error().message, HasSubstr(path));
  EXPECT_THAT(file.error().message, HasSubstr("No such file or directory"));
}

TEST(MappedFileTest, DirectoryIsRejected) {
  ScratchDir dir;
  Result<MappedFile> file = MappedFile::open(dir.path().string());
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(file.error().message, HasSubstr("not a regular file"));
}

TEST(MappedFileTest, MoveTransfersTheMapping) {
  ScratchDir dir;
  const std::string path = dir.file("m.bin");
  write_file(path, "abc");
  Result<MappedFile> opened = MappedFile::open(path);
  ASSERT_TRUE(opened.ok());
  const uint8_t* data = opened->data();

  MappedFile moved(std::move(*opened));
  EXPECT_EQ(moved.data(), data);
  EXPECT_EQ(moved.size(), 3u);
  EXPECT_EQ(opened->data(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_EQ(opened->size(), 0u);

  MappedFile assigned;
  assigned = std::move(moved);
  EXPECT_EQ(assigned.data(), data);
  EXPECT_EQ(assigned.path(), path);
  EXPECT_EQ(assigned.data()[2], 'c');

  // Assigning over a live mapping unmaps it (ASan/valgrind would flag a leak of the old one).
  Result<MappedFile> other = MappedFile::open(path);
  ASSERT_TRUE(other.ok());
  assigned = std::move(*other);
  EXPECT_EQ(assigned.data()[0], 'a');
}

TEST(GgufOpenTest, MissingFileNamesPath) {
  ScratchDir dir;
  const std::string path = dir.file("missing.gguf");
  Result<GgufFile> file = GgufFile::open(path);
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(file.error().message, HasSubstr("cannot open '" + path + "'"));
}

TEST(GgufOpenTest, EmptyFileIsAnError) {
  ScratchDir dir;
  const std::string path = dir.file("empty.gguf");
  write_file(path, "");
  Result<GgufFile> file = GgufFile::open(path);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.error().message, path + ": file is empty (0 bytes), not a GGUF file");
}

TEST(GgufOpenTest, TextFileIsBadMagic) {
  ScratchDir dir;
  const std::string path = dir.file("notes.txt");
  write_file(path, "this is not a model file at all");
  Result<GgufFile> file = GgufFile::open(path);
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(file.error().message, HasSubstr(path + ": bad magic 74 68 69 73"));
}

}  // namespace
}  // namespace moe::formats
