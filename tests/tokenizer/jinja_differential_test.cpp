// Differential tests: many small templates, each covering one construct, rendered by our
// engine and by Jinja2 (one Python process for the whole batch). Outputs must be
// byte-identical, and where Jinja2 raises, we must return an error too.
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "jinja_reference.h"
#include "tokenizer/jinja/template.h"

namespace moe::tokenizer::jinja {
namespace {

using nlohmann::ordered_json;

ordered_json test_context() {
  return ordered_json::parse(R"({
    "xs": [3, 1, 2], "names": ["bob", "Alice", "carol", "alice"], "empty": [], "none_value": null,
    "flag": true, "zero": 0, "pi": 3.14159, "big": 1e20, "small": 0.0001, "s": "  Hello World  ",
    "text": "a,b,,c", "unicode": "héllo wörld ✓ 日本", "d": {"b": 1, "a": 2, "C": 3},
    "users": [{"name": "ann", "age": 30, "admin": true}, {"name": "ben", "age": 25, "admin": false},
              {"name": "cid", "age": 35}],
    "nested": {"inner": {"list": [1, {"k": "v"}], "str": "x\"y'z\n"}},
    "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}]
  })");
}

// Each entry is one template; the comment names the behaviour it pins down.
const char* const kCases[] = {
    // printing values the Python way
    "{{ 1 }}|{{ 1.0 }}|{{ 2.50 }}|{{ big }}|{{ small }}|{{ 1e-5 }}|{{ true }}|{{ none }}|{{ none_value }}",
    "{{ xs }}|{{ names }}|{{ d }}|{{ (1, 'a') }}|{{ (1,) }}|{{ () }}|{{ nested }}",
    "{{ \"it's\" }}|{{ [\"it's\", 'say \"x\"', 'both \\' \"'] }}|{{ ['tab\\there', 'nl\\n'] }}",
    "{{ undefined_variable }}|{{ d.missing }}|{{ xs[10] }}",
    "{{ unicode }}|{{ unicode|length }}|{{ unicode[1] }}|{{ unicode[-1] }}|{{ unicode[::-1] }}",
    // arithmetic and operators
    "{{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 8 }} {{ 2 ** -1 }} {{ 7.0 // 2 }}",
    "{{ 1 + 2.0 }} {{ true + 1 }} {{ 'ab' * 3 }} {{ [1] * 2 }} {{ 'a' ~ 1 ~ none ~ true }} {{ [1] + [2] }}",
    "{{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ none == none }}",
    "{{ 'ell' in 'hello' }} {{ 2 in xs }} {{ 'a' in d }} {{ 'z' not in d }} {{ 1 in undefined_variable }}",
    "{{ flag and 'yes' }}|{{ zero or 'fallback' }}|{{ empty or none_value }}|{{ not empty }}|{{ -pi }}|{{ +zero }}",
    "{{ 'yes' if flag else 'no' }}|{{ 'yes' if zero }}|{{ 'a' if zero else 'b' if flag else 'c' }}",
    "{{ 1 + 'a' }}",
    "{{ 1 / 0 }}",
    "{{ 'a' < 1 }}",
    // subscripts and slices
    "{{ xs[0] }} {{ xs[-1] }} {{ xs[1:] }} {{ xs[:-1] }} {{ xs[::2] }} {{ xs[::-1] }} {{ xs[5:] }} {{ s[2:7] }}",
    "{{ d['a'] }} {{ d.a }} {{ nested.inner.list[1].k }} {{ nested['inner']['str'] }} {{ users.0.name }}",
    "{{ undefined_variable.attr }}",
    "{{ undefined_variable['key'] }}",
    "{{ d.missing.deeper }}",
    // statements
    "{% if zero %}a{% elif flag %}b{% else %}c{% endif %}",
    "{% for x in xs %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/"
    "{{ loop.last }}/{{ loop.length }}/{{ loop.previtem }}/{{ loop.nextitem }};{% endfor %}",
    "{% for x in xs %}{{ loop.cycle('odd', 'even') }} {% endfor %}",
    "{% for x in empty %}never{% else %}empty!{% endfor %}",
    "{% for x in xs if x > 1 %}{{ x }}:{{ loop.length }} {% endfor %}",
    "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}",
    "{% for x in xs %}{% if x == 1 %}{% continue %}{% endif %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}",
    "{% for c in 'abc' %}{{ c }}-{% endfor %}",
    "{% for x in none_value %}{% endfor %}",
    "{% set x = 1 %}{% for i in xs %}{{ x }}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}",
    "{% set ns = namespace(total=0, items=[]) %}{% for i in xs %}{% set ns.total = ns.total + i %}{% endfor %}"
    "{{ ns.total }}",
    "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c = (3, 4) %}{{ c }}",
    "{% set block %}  inner {{ xs|length }}  {% endset %}[{{ block }}]",
    "{% set up | upper %}shout{% endset %}{{ up }}",
    "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('a') }} {{ greet('b', '?') }} "
    "{{ greet(name='c', punct='.') }}",
    "{% macro m() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, k=3) }}",
    "{% macro wrap() %}<{{ caller() }}>{% endmacro %}{% call wrap() %}body {{ xs[0] }}{% endcall %}",
    "{% macro each(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}"
    "{% call(item) each(xs) %}[{{ item }}]{% endcall %}",
    "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(5) }}",
    "{% filter upper %}hello {{ 'world' }}{% endfilter %}",
    "{% raw %}{{ not rendered }} {% if %}{% endraw %}",
    "{% with a = 1, b = xs %}{{ a }}{{ b }}{% endwith %}{{ a }}",
    "{# a comment #}x{#- trimmed -#}  y",
    "{% if flag %}{% set scoped = 1 %}{% endif %}{{ scoped }}",
    "{% for i in xs %}{% set inner = i %}{% endfor %}[{{ inner }}]",
    // whitespace control, trim_blocks, lstrip_blocks
    "a\n  {% if flag %}\n    b\n  {% endif %}\nc\n",
    "a  {%- if flag -%}  b  {%- endif -%}  c",
    "  {{ 'x' }}  \n  {%+ if flag %}y{% endif %}\n",
    "{% if flag +%}\nkept newline{% endif %}",
    "line1\n{# comment #}\nline2\n    {# indented comment #}\nline3",
    "{{- '  a  ' -}}\n\n  {{ 'b' }}",
    "x\r\ny\rz\n\n",
    "  {% raw %}  raw  {% endraw %}  after",
    // filters
    "{{ s|trim }}|{{ s|upper }}|{{ s|lower }}|{{ s|title }}|{{ 'hELLO wORLD'|capitalize }}|{{ 'x-y z(a'|title }}",
    "{{ xs|length }} {{ xs|count }} {{ d|length }} {{ xs|first }} {{ xs|last }} {{ xs|sum }} {{ xs|min }} {{ xs|max }}",
    "{{ names|join(', ') }}|{{ users|join(', ', attribute='name') }}|{{ xs|join }}",
    "{{ undefined_variable|default('dflt') }}|{{ ''|default('dflt') }}|{{ ''|default('dflt', true) }}|{{ none|d('n') }}",
    "{{ nested|tojson }}|{{ users|tojson(indent=2) }}|{{ unicode|tojson }}|{{ d|tojson(sort_keys=true) }}",
    "{{ [1.0, 2.5, 1e20, -0.0, none, true]|tojson }}|{{ {'a': []}|tojson(indent=4) }}|{{ 'x\\u0001'|tojson }}",
    "{{ unicode|tojson(ensure_ascii=true) }}|{{ {}|tojson }}|{{ []|tojson(indent=2) }}",
    "{{ xs|string }}|{{ 42|string }}|{{ '42'|int + 1 }}|{{ '3.7'|int }}|{{ 'x'|int }}|{{ 'x'|int(7) }}|{{ 3.9|int }}",
    "{{ '2.5'|float }}|{{ 2|float }}|{{ 'abc'|float }}|{{ '0x1A'|int(0, 16) }}|{{ ' 12 '|int }}",
    "{{ 'abc'|list }}|{{ d|list }}|{{ d|items|list }}|{{ d|dictsort }}|{{ d|dictsort(reverse=true) }}",
    "{{ d|dictsort(case_sensitive=true) }}|{{ d|dictsort(by='value') }}",
    "{{ users|selectattr('admin')|map(attribute='name')|list }}|{{ users|rejectattr('admin')|map(attribute='name')|join(',') }}",
    "{{ users|selectattr('age', 'gt', 26)|list|length }}|{{ users|selectattr('name', 'equalto', 'ben')|first }}",
    "{{ xs|select('odd')|list }}|{{ xs|reject('odd')|list }}|{{ xs|select|list }}|{{ names|map('upper')|list }}",
    "{{ users|map(attribute='admin', default='?')|list }}|{{ none_value|selectattr('x')|list }}",
    "{{ names|unique|list }}|{{ names|unique(case_sensitive=true)|list }}|{{ names|sort }}|{{ names|sort(reverse=true) }}",
    "{{ users|sort(attribute='age')|map(attribute='name')|join }}|{{ names|sort(case_sensitive=true) }}",
    "{{ 'a-b-c'|replace('-', '+') }}|{{ 'aaa'|replace('a', 'b', 2) }}|{{ -3|abs }}|{{ -2.5|abs }}",
    "{{ 2.5|round }}|{{ 3.5|round }}|{{ 2.675|round(2) }}|{{ 3|round }}|{{ 2.1|round(0, 'ceil') }}|{{ 2.9|round(method='floor') }}",
    "{{ xs|reverse|list }}|{{ 'abc'|reverse }}|{{ 'a<b>&\"c\\''|escape }}|{{ 'x'|safe }}|{{ '<'|e }}",
    "{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent(width='>', blank=true) }}",
    "{{ 'one two  three'|wordcount }}|{{ xs|batch(2)|list }}|{{ xs|batch(2, 0)|list }}|{{ 'ab'|center(6) }}|",
    "{{ '%s-%s'|format(1, 'a') }}|{{ '%d%%'|format(5) }}|{{ users|sum(attribute='age') }}",
    "{{ xs|map('string')|join('|') }}|{{ ['a', 'b']|map('upper')|join }}",
    "{{ ('<'|safe) + '<' }}|{{ '<' + ('<'|safe) }}|{{ ('<'|safe) ~ '<' }}",
    "{{ xs|no_such_filter }}",
    "{% if false %}{{ xs|no_such_filter }}{% endif %}ok",
    "{{ xs is no_such_test }}",
    // tests
    "{{ x is defined }}{{ xs is defined }}{{ none_value is none }}{{ 'a' is string }}{{ 1 is number }}{{ true is number }}",
    "{{ 1 is integer }}{{ true is integer }}{{ 1.0 is float }}{{ d is mapping }}{{ xs is mapping }}{{ xs is iterable }}",
    "{{ 'a' is iterable }}{{ 1 is iterable }}{{ xs is sequence }}{{ d is sequence }}{{ true is boolean }}{{ 1 is boolean }}",
    "{{ true is true }}{{ 1 is true }}{{ false is false }}{{ 0 is false }}{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}",
    "{{ 1 is eq 1 }}{{ 1 is equalto 2 }}{{ 1 is ne 2 }}{{ 2 is in xs }}{{ 'a' is in 'abc' }}{{ x is undefined }}",
    "{{ 1 is lt 2 }}{{ 2 is ge 3 }}{{ 'ab' is lower }}{{ 'AB' is upper }}{{ none is sameas none }}{{ xs is sameas xs }}",
    "{{ users|selectattr('admin', 'defined')|list|length }}{{ 'x' is not none }}{{ none is not none }}",
    // methods
    "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ 'xxaxx'.strip('x') }}|{{ text.split(',') }}|{{ s.split() }}",
    "{{ text.split(',', 1) }}|{{ text.rsplit(',', 1) }}|{{ '  a  b '.split(none, 1) }}|{{ 'a b c'.rsplit(none, 1) }}",
    "{{ 'abc'.startswith('a') }}{{ 'abc'.startswith(('x', 'ab')) }}{{ 'abc'.endswith('bc') }}{{ 'abc'.upper() }}",
    "{{ 'hello world'.title() }}|{{ 'hello'.capitalize() }}|{{ 'abcabc'.find('c') }}|{{ 'abc'.find('z') }}",
    "{{ 'abcabc'.rfind('b') }}|{{ 'aaa'.count('a') }}|{{ ', '.join(names) }}|{{ 'a-b'.replace('-', '') }}",
    "{{ d.get('a') }}|{{ d.get('z') }}|{{ d.get('z', 9) }}|{{ d.keys()|list }}|{{ d.values()|list }}|{{ d.items()|list }}",
    "{% set l = [1, 2, 3] %}{{ l.pop() }}{{ l }}{{ l.pop(0) }}{{ l }}",
    "{% set l = [1] %}{{ l.append(2) }}",
    "{% set l = [1] %}{{ l.append is defined }}",
    "{% set dd = {'a': 1} %}{{ dd.update({'b': 2}) }}",
    "{{ 'abc'.nonexistent() }}",
    // globals
    "{{ range(3)|list }}|{{ range(1, 7, 2)|list }}|{{ range(5, 0, -2)|list }}|{{ dict(a=1, b=2) }}",
    "{{ raise_exception('custom failure') }}",
    "{{ strftime_now('%Y-%m-%d %H:%M %A %b') }}",
    "{% set ns = namespace(a=1) %}{{ ns.a }}{{ ns.b is defined }}",
    "{{ messages[0]['role'] }}{{ messages|selectattr('role', 'equalto', 'user')|list|length }}",
    // literals
    "{{ {'a': 1, 'b': [1, 2], 3: 'x'} }}|{{ [] }}|{{ [1, 2,] }}|{{ 'a' 'b' }}|{{ 0x10 }}|{{ 1_000 }}|{{ 1e3 }}",
    "{{ 'esc: \\\\ \\x41 \\u00e9 \\t|' }}",
    // syntax errors Jinja2 rejects
    "{% if %}{% endif %}",
    "{% for x in xs %}",
    "{% endif %}",
    "{{ (1, 2 }}",
    "{% unknowntag %}",
    "{{ 1 +* 2 }}",
    "{% set x = %}",
    "{# unclosed comment",
    "{{ 'unterminated }}",
};

TEST(JinjaDifferential, MatchesJinja2OnConstructs) {
  if (!testing::reference_available()) GTEST_SKIP() << "python3 with jinja2 not available";
  std::vector<std::pair<std::string, ordered_json>> cases;
  for (const char* source : kCases) cases.emplace_back(source, test_context());
  std::vector<testing::ReferenceRender> expected = testing::render_reference_batch(cases);
  ASSERT_EQ(expected.size(), cases.size()) << "the reference script failed";
  RenderOptions options;
  options.now_unix_seconds = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].first);
    Result<std::string> actual = [&]() -> Result<std::string> {
      MOE_ASSIGN_OR_RETURN(Template tmpl, Template::parse(cases[i].first));
      return tmpl.render(cases[i].second, options);
    }();
    if (!expected[i].ok) {
      EXPECT_FALSE(actual.ok()) << "Jinja2 raised (" << expected[i].output << ") but we rendered: " << *actual;
      continue;
    }
    ASSERT_TRUE(actual.ok()) << actual.error().message << "\nJinja2 rendered: " << expected[i].output;
    EXPECT_EQ(*actual, expected[i].output);
  }
}

}  // namespace
}  // namespace moe::tokenizer::jinja
