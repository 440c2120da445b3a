// `moe serve` against the official openai npm client, unmodified: streaming and non-streaming
// chat and completions, with usage counted right.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startServer, requiredEnv } from "./server.mjs";

let server;
let client;

before(async () => {
  server = await startServer(requiredEnv("MOE_CLI"), requiredEnv("MOE_MODEL"), ["--parallel", "4", "-c", "512"]);
  client = new OpenAI({ baseURL: server.url + "/v1", apiKey: "unused", maxRetries: 0 });
});

after(async () => {
  assert.equal(await server.stop(), 0);
});

test("models lists the served model", async () => {
  const models = await client.models.list();
  assert.equal(models.data.length, 1);
  assert.equal(models.data[0].id, "kjv-moe-q8_0");
});

test("chat completion, whole and streamed, with usage", async () => {
  const request = {
    model: "kjv-moe-q8_0",
    messages: [{ role: "user", content: "And God said" }],
    max_tokens: 16,
    temperature: 0,
  };
  const whole = await client.chat.completions.create(request);
  assert.equal(whole.object, "chat.completion");
  const text = whole.choices[0].message.content;
  assert.ok(text.length > 0);
  assert.ok(["stop", "length"].includes(whole.choices[0].finish_reason));
  assert.equal(whole.usage.total_tokens, whole.usage.prompt_tokens + whole.usage.completion_tokens);
  assert.ok(whole.usage.completion_tokens >= 1 && whole.usage.completion_tokens <= 16);

  const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
  let streamed = "";
  let usage = null;
  let finish = null;
  let role = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      if (choice.delta.role) role = choice.delta.role;
      if (choice.delta.content) streamed += choice.delta.content;
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  assert.equal(role, "assistant");
  assert.equal(streamed, text);
  assert.equal(finish, whole.choices[0].finish_reason);
  assert.deepEqual(usage, whole.usage);
});

test("completion, whole and streamed, with usage", async () => {
  const request = { model: "kjv-moe-q8_0", prompt: "In the beginning", max_tokens: 12, temperature: 0 };
  const whole = await client.completions.create(request);
  assert.equal(whole.object, "text_completion");
  assert.equal(whole.choices[0].finish_reason, "length");
  assert.equal(whole.usage.completion_tokens, 12);
  assert.equal(whole.usage.total_tokens, whole.usage.prompt_tokens + 12);

  const stream = await client.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
  let streamed = "";
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) streamed += choice.text;
  }
  assert.equal(streamed, whole.choices[0].text);
  assert.deepEqual(usage, whole.usage);
});

test("errors surface as the client's typed errors", async () => {
  await assert.rejects(
    client.chat.completions.create({ model: "x", messages: [], max_tokens: 4 }),
    (error) => error instanceof OpenAI.BadRequestError && error.status === 400 && error.param === "messages",
  );
  await assert.rejects(
    client.completions.create({ model: "x", prompt: "And", temperature: 9 }),
    (error) => error instanceof OpenAI.BadRequestError && error.param === "temperature",
  );
});
