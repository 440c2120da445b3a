// Running the `moe` binary from tests: one process per call, stdout and stderr captured through
// temporary files, the exit status decoded. Shared by the CLI tests of every layer.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace moe::test {

struct CommandResult {
  int exit_code = -1;  // -1 when the process did not exit normally
  std::string out;     // stdout
  std::string err;     // stderr
};

// Returns a path in the temp directory unique to this process: <prefix>-<pid>-<name>.
inline std::string temp_path_for(const std::string& prefix, const std::string& name) {
  return (std::filesystem::temp_directory_path() / (prefix + "-" + std::to_string(::getpid()) + "-" + name)).string();
}

// Returns the whole file (empty when it cannot be read).
inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs `<moe_path> <args>` through the shell with stdin from `stdin_path`.
inline CommandResult run_moe(const std::string& moe_path, const std::string& args,
                             const std::string& stdin_path = "/dev/null") {
  const std::string out = temp_path_for("moe-run", "stdout"), err = temp_path_for("moe-run", "stderr");
  const std::string cmd = moe_path + " " + args + " >" + out + " 2>" + err + " <" + stdin_path;
  const int status = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  std::remove(out.c_str());
  std::remove(err.c_str());
  return r;
}

}  // namespace moe::test
