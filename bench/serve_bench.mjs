// Aggregate generation throughput of an OpenAI-compatible server (`moe serve` or llama.cpp's
// llama-server) at several concurrency levels: N clients each stream greedy completions of
// different prompts; tokens/s = completion tokens of all clients / wall time of the round.
// No npm packages: Node's fetch.
// Usage: node bench/serve_bench.mjs --url http://127.0.0.1:8080 [--streams 1,4,8,16] [--tokens 128]
//        [--rounds 1]
const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith("--") ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []),
);
const url = args.url || "http://127.0.0.1:8080";
const streams = (args.streams || "1,4,8,16").split(",").map(Number);
const maxTokens = Number(args.tokens || 128);
const rounds = Number(args.rounds || 1);
const starts = ["And God said", "In the beginning", "And the earth", "Blessed are the", "And Moses spake",
                "The LORD is my", "And it came to pass", "Thou shalt not"];

// Streams one completion; returns the completion tokens the server reports.
async function one(i) {
  const response = await fetch(url + "/v1/completions", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      prompt: starts[i % starts.length] + (i >= starts.length ? " " + i : ""),
      max_tokens: maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true },
      ignore_eos: true,  // llama-server: generate all max_tokens, as moe serve does for a model without EOS
    }),
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
  const text = await response.text();
  let tokens = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
    const chunk = JSON.parse(line.slice(6));
    if (chunk.usage) tokens = chunk.usage.completion_tokens;
  }
  return tokens;
}

console.log(`| streams | completion tokens | seconds | aggregate tokens/s | per stream tokens/s |`);
console.log(`|---:|---:|---:|---:|---:|`);
await one(0);  // warm-up (page in the weights)
for (const n of streams) {
  let best = null;
  for (let r = 0; r < rounds; ++r) {
    const start = performance.now();
    const counts = await Promise.all(Array.from({ length: n }, (_, i) => one(i)));
    const seconds = (performance.now() - start) / 1000;
    const tokens = counts.reduce((a, b) => a + b, 0);
    if (!best || tokens / seconds > best.tokens / best.seconds) best = { tokens, seconds };
  }
  const rate = best.tokens / best.seconds;
  console.log(`| ${n} | ${best.tokens} | ${best.seconds.toFixed(2)} | ${rate.toFixed(1)} | ${(rate / n).toFixed(1)} |`);
}
