// Errors: unsupported constructs and malformed templates must give an error naming the
// construct and the template line, never a crash or a silent render; a light fuzz of real
// templates checks that mutations never crash.
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "tokenizer/jinja/template.h"

namespace moe::tokenizer::jinja {
namespace {

// Returns the error message of parsing and rendering `source`, or "" if it rendered.
std::string render_error(const std::string& source, const nlohmann::ordered_json& context = nlohmann::ordered_json::object()) {
  auto tmpl = Template::parse(source);
  if (!tmpl.ok()) return tmpl.error().message;
  auto out = tmpl->render(context);
  return out.ok() ? "" : out.error().message;
}

TEST(JinjaErrors, UnsupportedConstructsNameTheConstructAndLine) {
  struct Case {
    const char* source;
    const char* expected;
  };
  const Case cases[] = {
      {"a\n{% extends 'base.html' %}", "template line 2: unsupported construct: {% extends %} (templates must be self-contained)"},
      {"{% include 'x' %}", "template line 1: unsupported construct: {% include %} (templates must be self-contained)"},
      {"\n\n{% import 'x' as y %}", "template line 3: unsupported construct: {% import %} (templates must be self-contained)"},
      {"{% block b %}{% endblock %}", "template line 1: unsupported construct: {% block %} (templates must be self-contained)"},
      {"{% for x in y recursive %}{% endfor %}", "template line 1: unsupported construct: recursive for loop"},
      {"{{ f(*args) }}", "template line 1: unsupported construct: *args/**kwargs in a call"},
      {"{% do x.append(1) %}", "template line 1: encountered unknown tag 'do'"},
      {"{{ x|groupby('a') }}", "template line 1: unsupported construct: filter 'groupby'"},
      {"\n{{ cycler(1, 2) }}", "template line 2: unsupported construct: cycler()"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(render_error(c.source, {{"x", {1}}}), c.expected) << c.source;
  }
}

TEST(JinjaErrors, RuntimeErrorsCarryTheLine) {
  EXPECT_EQ(render_error("ok\n\n{{ raise_exception('Only user and assistant roles are supported!') }}"),
            "template line 3: raise_exception: Only user and assistant roles are supported!");
  EXPECT_EQ(render_error("{% for m in messages %}\n{{ m.content.strip() }}{% endfor %}",
                         {{"messages", {{{"role", "user"}}}}}),
            "template line 2: UndefinedError: 'dict object' has no attribute 'content'");
  EXPECT_EQ(render_error("{{ 1 // 0 }}"), "template line 1: ZeroDivisionError: integer division or modulo by zero");
}

TEST(JinjaErrors, MalformedTemplatesFailCleanly) {
  const char* const sources[] = {
      "{{",          "{%",          "{#",           "{{ }}",         "{% %}",         "{{ 1 + }}",
      "{{ [1, 2 }}", "{{ (1 }}",    "{{ 'abc }}",   "{% if x %}",    "{% for %}",     "{% endfor %}",
      "{% set %}",   "{% macro %}", "{{ a.  }}",    "{{ a[ }}",      "{{ a | }}",     "{{ x is }}",
      "{% elif %}",  "{% else %}",  "{{ 99999999999999999999999 }}", "{{ '\\u12' }}", "{{ {1: } }}",
      "{% if x %}{% else %}{% else %}{% endif %}", "{% raw %}unclosed",
  };
  for (const char* source : sources) {
    EXPECT_FALSE(render_error(source).empty()) << source;
  }
}

TEST(JinjaErrors, DeepNestingIsRefusedNotAStackOverflow) {
  std::string deep_expr = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  EXPECT_NE(render_error(deep_expr).find("nesting too deep"), std::string::npos);
  std::string deep_not = "{{ " + std::string(1, ' ');
  for (int i = 0; i < 5000; ++i) deep_not += "not ";
  EXPECT_FALSE(render_error(deep_not + "1 }}").empty());
  std::string deep_if;
  for (int i = 0; i < 5000; ++i) deep_if += "{% if true %}";
  EXPECT_FALSE(render_error(deep_if).empty());
  EXPECT_NE(render_error("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").find("RecursionError"), std::string::npos);
}

TEST(JinjaErrors, RuntimeLimits) {
  EXPECT_NE(render_error("{{ range(1000000)|length }}").find("MAX_RANGE"), std::string::npos);
  EXPECT_NE(render_error("{{ 2 ** 64 }}").find("OverflowError"), std::string::npos);
}

// Mutates real templates (byte deletions, insertions of template syntax, truncations) and
// renders them; any outcome is fine except a crash or hang.
TEST(JinjaErrors, FuzzedRealTemplatesNeverCrash) {
  std::filesystem::path dir = std::filesystem::path(MOE_TESTDATA_DIR) / "templates";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "no templates in " << dir;
  nlohmann::ordered_json context = nlohmann::ordered_json::parse(R"({
    "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                 {"role": "assistant", "content": "a"}], "add_generation_prompt": true,
    "bos_token": "<s>", "eos_token": "</s>", "tools": null})");
  const char* const snippets[] = {"{%", "%}", "{{", "}}", "{#", "#}", "-", "(", ")", "[", "]", "'", "\"",
                                  "endif", "endfor", "|", ".", ",", "{% endif %}", "{% for x in y %}", "\n"};
  std::mt19937 rng(1234);
  int rendered = 0, failed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string original = ss.str();
    if (original.empty()) continue;
    for (int round = 0; round < 20; ++round) {
      std::string s = original;
      for (int edit = 0; edit < 3; ++edit) {
        size_t at = rng() % s.size();
        switch (rng() % 3) {
          case 0: s.erase(at, 1 + rng() % 8); break;
          case 1: s.insert(at, snippets[rng() % std::size(snippets)]); break;
          default: s.resize(at + 1); break;
        }
        if (s.empty()) s = "x";
      }
      auto tmpl = Template::parse(s);
      bool ok = tmpl.ok() && tmpl->render(context).ok();
      (ok ? rendered : failed)++;
    }
  }
  EXPECT_GT(rendered + failed, 0);
}

}  // namespace
}  // namespace moe::tokenizer::jinja
