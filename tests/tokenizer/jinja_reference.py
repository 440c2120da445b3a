#!/usr/bin/env python3
"""Reference renderer for the chat-template tests: renders a template with Jinja2 the way
Hugging Face's apply_chat_template does (ImmutableSandboxedEnvironment with trim_blocks,
lstrip_blocks, loopcontrols, HF's tojson, raise_exception, strftime_now and the
{% generation %} tag of HF's AssistantTracker, which renders its body).

Usage: jinja_reference.py TEMPLATE_PATH CONTEXT_JSON_PATH
CONTEXT_JSON_PATH holds {"context": {...template variables...}, "now": <unix seconds>}.
Prints the render to stdout (no trailing newline added) and exits 0, or prints
"ERROR: <type>: <message>" to stderr and exits 3 when Jinja2 raises.

Batch mode: jinja_reference.py --batch CASES_JSON_PATH, where the file holds
[{"template": "...", "context": {...}}, ...] (rendered with "now" = 0); prints a JSON list of
{"ok": bool, "output": render or error text}, one per case, in one Python start-up.
"""
import json
import sys
from datetime import datetime, timezone

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment


class GenerationTag(Extension):
    """HF's AssistantTracker without tracking: {% generation %}body{% endgeneration %}."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_environment(now):
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return now.strftime(fmt)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, "jinja2.ext.loopcontrols"]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render_batch(cases_path):
    with open(cases_path, encoding="utf-8") as f:
        cases = json.load(f)
    env = make_environment(datetime.fromtimestamp(0, tz=timezone.utc))
    results = []
    for case in cases:
        try:
            results.append({"ok": True, "output": env.from_string(case["template"]).render(**case["context"])})
        except Exception as e:  # any Jinja2 failure is an expected "error" outcome
            results.append({"ok": False, "output": f"{type(e).__name__}: {e}"})
    sys.stdout.buffer.write(json.dumps(results, ensure_ascii=False).encode("utf-8"))


def main():
    if sys.argv[1] == "--batch":
        render_batch(sys.argv[2])
        return
    template_path, context_path = sys.argv[1], sys.argv[2]
    with open(template_path, encoding="utf-8") as f:
        source = f.read()
    with open(context_path, encoding="utf-8") as f:
        request = json.load(f)
    env = make_environment(datetime.fromtimestamp(request.get("now", 0), tz=timezone.utc))
    try:
        rendered = env.from_string(source).render(**request["context"])
    except Exception as e:  # any Jinja2 failure is an expected "error" outcome
        sys.stderr.write(f"ERROR: {type(e).__name__}: {e}\n")
        sys.exit(3)
    sys.stdout.buffer.write(rendered.encode("utf-8"))


if __name__ == "__main__":
    main()
