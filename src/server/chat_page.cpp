// The chat page at "/": plain HTML, CSS and JavaScript in one document (no build step). It keeps
// the conversation in the page, sends it to /v1/chat/completions with "stream": true and renders
// the SSE deltas as they arrive. Sized for phone screens (viewport meta, one column, sticky input).
#include "server/http_server.h"

namespace moe::server {

namespace {

constexpr const char* kChatPage = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>moe.cpp chat</title>
<style>
  * { box-sizing: border-box; }
  html, body { height: 100%; margin: 0; }
  body { font: 16px/1.45 system-ui, sans-serif; background: #f4f4f6; color: #1b1b1f;
         display: flex; flex-direction: column; }
  header { padding: .6rem 1rem; background: #23233a; color: #fff; display: flex; gap: .5rem;
           align-items: center; flex-wrap: wrap; }
  header h1 { font-size: 1.05rem; margin: 0; flex: 1; }
  header input { width: 9rem; font-size: .85rem; padding: .25rem .4rem; border-radius: 6px; border: 0; }
  header button { font-size: .85rem; }
  #log { flex: 1; overflow-y: auto; padding: 1rem; display: flex; flex-direction: column; gap: .6rem; }
  .msg { max-width: 85%; padding: .55rem .8rem; border-radius: 12px; white-space: pre-wrap;
         word-wrap: break-word; }
  .user { align-self: flex-end; background: #3856d6; color: #fff; }
  .assistant { align-self: flex-start; background: #fff; border: 1px solid #ddd; }
  .error { align-self: center; background: #fde8e8; color: #8a1c1c; }
  form { display: flex; gap: .5rem; padding: .6rem; background: #fff; border-top: 1px solid #ddd;
         position: sticky; bottom: 0; }
  textarea { flex: 1; font: inherit; resize: none; padding: .5rem; border-radius: 8px; border: 1px solid #bbb;
             min-height: 2.6rem; max-height: 9rem; }
  button { font: inherit; padding: .45rem .9rem; border-radius: 8px; border: 0; background: #3856d6;
           color: #fff; }
  button:disabled { background: #999; }
</style>
</head>
<body>
<header>
  <h1>moe.cpp chat</h1>
  <input id="key" type="password" placeholder="API key (if set)" aria-label="API key">
  <button id="clear" type="button">New chat</button>
</header>
<main id="log" aria-live="polite"></main>
<form id="form">
  <textarea id="input" rows="1" placeholder="Message" aria-label="Message"></textarea>
  <button id="send" type="submit">Send</button>
</form>
<script>
"use strict";
const log = document.getElementById("log");
const input = document.getElementById("input");
const send = document.getElementById("send");
const key = document.getElementById("key");
key.value = localStorage.getItem("moe-api-key") || "";
key.addEventListener("change", () => localStorage.setItem("moe-api-key", key.value));
let messages = [];

function bubble(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.textContent = text;
  log.appendChild(div);
  log.scrollTop = log.scrollHeight;
  return div;
}

// Reads an SSE body and calls onData with each "data:" payload.
async function readEvents(response, onData) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (line.startsWith("data: ")) onData(line.slice(6));
      }
    }
  }
}

async function ask(text) {
  messages.push({ role: "user", content: text });
  bubble("user", text);
  const reply = bubble("assistant", "");
  reply.classList.add("streaming");
  const headers = { "Content-Type": "application/json" };
  if (key.value) headers["Authorization"] = "Bearer " + key.value;
  let content = "";
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST", headers,
      body: JSON.stringify({ messages, stream: true, max_tokens: 256 }),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error((body.error && body.error.message) || response.statusText);
    }
    await readEvents(response, (data) => {
      if (data === "[DONE]") return;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
      if (delta && delta.content) {
        content += delta.content;
        reply.textContent = content;
        reply.dataset.chunks = String(Number(reply.dataset.chunks || 0) + 1);
        log.scrollTop = log.scrollHeight;
      }
    });
    messages.push({ role: "assistant", content });
  } catch (err) {
    bubble("error", String(err.message || err));
    messages.pop();
  } finally {
    reply.classList.remove("streaming");
    reply.classList.add("done");
  }
}

document.getElementById("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text || send.disabled) return;
  input.value = "";
  send.disabled = true;
  try { await ask(text); } finally { send.disabled = false; input.focus(); }
});
input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    document.getElementById("form").requestSubmit();
  }
});
document.getElementById("clear").addEventListener("click", () => { messages = []; log.textContent = ""; });
</script>
</body>
</html>
)HTML";

}  // namespace

const std::string& chat_page_html() {
  static const std::string page(kChatPage);
  return page;
}

}  // namespace moe::server
