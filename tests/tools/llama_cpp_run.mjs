// Runs a GGUF model in real llama.cpp (the prebuilt CPU binaries of node-llama-cpp) and writes what
// the export tests compare against the packed engine:
//   node llama_cpp_run.mjs <model.gguf> <in.json> <out.json>
// in.json:  {"threads": 2, "context": 256,
//            "score":  [{"tokens": [ids], "candidates": [[ids] per position]}],   -- next-token distributions
//            "greedy": {"prompts": [[ids]], "tokens": 32},                        -- greedy continuations
//            "tokenize": ["text", ...]}                                             -- llama.cpp's tokenizer
// out.json: {"llama_cpp": "<release>",
//            "score":  [{"top1": [id per position], "logprobs": [[log p of each candidate] per position]}],
//            "greedy": [[ids]], "tokenized": [[ids]]}
// Log-probabilities come from llama.cpp's own softmax (no sampling options applied); tokens are fed
// as ids, so llama.cpp's tokenizer is checked on its own ("tokenize": no BOS, special tokens as text).
import fs from "node:fs";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const [modelPath, inPath, outPath] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: node llama_cpp_run.mjs <model.gguf> <in.json> <out.json>");
  process.exit(2);
}
const input = JSON.parse(fs.readFileSync(inPath, "utf8"));
const threads = input.threads ?? 2;

const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath });
const context = await model.createContext({ contextSize: input.context ?? 256, batchSize: input.context ?? 256, threads, sequences: 1 });
const sequence = context.getSequence();
const out = { llama_cpp: llama.llamaCppRelease?.release ?? "unknown", score: [], greedy: [], tokenized: [] };
for (const text of input.tokenize ?? []) out.tokenized.push(Array.from(model.tokenize(text, false)));

for (const item of input.score ?? []) {
  await sequence.clearHistory();
  const res = await sequence.controlledEvaluate(item.tokens.map((t) => [t, { generateNext: { probabilities: true } }]));
  const top1 = [], logprobs = [];
  res.forEach((r, i) => {
    const probs = r?.next?.probabilities;
    if (!probs) throw new Error(`no probabilities at position ${i}`);
    top1.push(probs.entries().next().value[0]);
    logprobs.push((item.candidates?.[i] ?? []).map((id) => Math.log(probs.get(id) ?? 0)));
  });
  out.score.push({ top1, logprobs });
}

const greedy = input.greedy ?? { prompts: [], tokens: 0 };
for (const prompt of greedy.prompts) {
  await sequence.clearHistory();
  const gen = [];
  for await (const t of sequence.evaluate(prompt, { temperature: 0, yieldEogToken: true })) {
    gen.push(t);
    if (gen.length >= greedy.tokens) break;
  }
  out.greedy.push(gen);
}

fs.writeFileSync(outPath, JSON.stringify(out));
await context.dispose();
await model.dispose();
