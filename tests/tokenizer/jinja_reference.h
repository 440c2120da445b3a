// Runs tests/tokenizer/jinja_reference.py (Jinja2 configured like Hugging Face) from tests, so
// our engine's output can be compared with Jinja2's own.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe::tokenizer::testing {

struct ReferenceRender {
  bool ok = false;
  std::string output;  // the render, or Jinja2's error text
};

// Debian's python3-jinja2 lives under /usr/bin/python3; another python3 first on PATH may not
// have jinja2.
inline std::string python_command() {
  return std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

// Returns whether python3 can import jinja2 (tests skip otherwise).
inline bool reference_available() {
  std::string cmd = python_command() + " -c 'import jinja2' 2>/dev/null";
  return std::system(cmd.c_str()) == 0;
}

inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

inline std::filesystem::path reference_script() {
  return std::filesystem::path(__FILE__).parent_path() / "jinja_reference.py";
}

// Writes `payload` to a fresh temporary file and returns its path ("" on failure).
inline std::string write_temp(const std::string& payload) {
  char name[] = "/tmp/moe_jinja_ref_XXXXXX";
  int fd = mkstemp(name);
  if (fd < 0) return "";
  bool ok = write(fd, payload.data(), payload.size()) == static_cast<ssize_t>(payload.size());
  close(fd);
  if (!ok) {
    unlink(name);
    return "";
  }
  return name;
}

// Runs the reference script with `args`; returns its stdout+stderr and whether it exited 0.
inline ReferenceRender run_reference(const std::string& args) {
  ReferenceRender result;
  std::string cmd = python_command() + " " + shell_quote(reference_script().string()) + " " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return result;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) result.output.append(buf, n);
  int status = pclose(pipe);
  result.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return result;
}

// Returns Jinja2's render of the template file with `context`, strftime_now() at `now`.
inline ReferenceRender render_reference(const std::filesystem::path& template_path,
                                        const nlohmann::ordered_json& context, int64_t now) {
  std::string ctx = write_temp(nlohmann::ordered_json{{"context", context}, {"now", now}}.dump());
  if (ctx.empty()) return {false, "could not write the context file"};
  ReferenceRender result = run_reference(shell_quote(template_path.string()) + " " + ctx);
  unlink(ctx.c_str());
  return result;
}

// Returns Jinja2's renders of many (template source, context) cases in one Python process.
inline std::vector<ReferenceRender> render_reference_batch(
    const std::vector<std::pair<std::string, nlohmann::ordered_json>>& cases) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& [source, context] : cases) list.push_back({{"template", source}, {"context", context}});
  std::string path = write_temp(list.dump());
  std::vector<ReferenceRender> out;
  if (path.empty()) return out;
  ReferenceRender raw = run_reference("--batch " + path);
  unlink(path.c_str());
  if (!raw.ok) return out;
  auto parsed = nlohmann::json::parse(raw.output, nullptr, false);
  if (!parsed.is_array()) return out;
  for (const auto& item : parsed) out.push_back({item.value("ok", false), item.value("output", "")});
  return out;
}

}  // namespace moe::tokenizer::testing
