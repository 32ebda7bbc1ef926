// Calls an OpenAI-compatible server with the official OpenAI Node SDK (npm `openai`), asking for
// logprobs, and prints what the SDK parsed as JSON. Used by serve tests as an independent client.
// Usage: node openai_sdk_logprobs.js <baseURL> <apiKey> <model> <prompt> <maxTokens> <topLogprobs>
const OpenAI = require('openai');

async function main() {
  const [baseURL, apiKey, model, prompt, maxTokens, topLogprobs] = process.argv.slice(2);
  const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });
  const models = await client.models.list();
  const chat = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: prompt }],
    max_tokens: Number(maxTokens),
    temperature: 0,
    logprobs: true,
    top_logprobs: Number(topLogprobs),
  });
  const choice = chat.choices[0];
  // The same request streamed: the SDK parses our server-sent events chunk by chunk.
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: prompt }],
    max_tokens: Number(maxTokens),
    temperature: 0,
    logprobs: true,
    top_logprobs: Number(topLogprobs),
    stream: true,
    stream_options: { include_usage: true },
  });
  let streamed = '';
  let streamedTokens = 0;
  let streamedUsage = null;
  for await (const chunk of stream) {
    if (chunk.usage) streamedUsage = chunk.usage;
    const c = chunk.choices[0];
    if (!c) continue;
    if (c.delta && c.delta.content) streamed += c.delta.content;
    if (c.logprobs && c.logprobs.content) streamedTokens += c.logprobs.content.length;
  }
  let badKeyStatus = null;
  try {
    await new OpenAI({ baseURL, apiKey: 'wrong-key-0000', maxRetries: 0 }).chat.completions.create({
      model, messages: [{ role: 'user', content: prompt }], max_tokens: 1 });
  } catch (e) {
    badKeyStatus = { status: e.status, type: e.error && e.error.type, code: e.code };
  }
  console.log(JSON.stringify({
    models: models.data.map((m) => m.id),
    object: chat.object,
    content: choice.message.content,
    finish_reason: choice.finish_reason,
    usage: chat.usage,
    tokens: choice.logprobs.content.map((t) => ({
      token: t.token, logprob: t.logprob, bytes: t.bytes,
      top: t.top_logprobs.map((a) => ({ token: a.token, logprob: a.logprob })),
    })),
    bad_key: badKeyStatus,
    stream: { content: streamed, tokens: streamedTokens, usage: streamedUsage },
  }));
}

main().catch((e) => {
  console.error('openai sdk call failed:', e && e.message ? e.message : e);
  process.exit(1);
});
