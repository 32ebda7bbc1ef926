// llama.cpp's side of bench/llama_cpp_bench.cc: prompt processing and greedy decode speed of a GGUF in
// real llama.cpp (node-llama-cpp's prebuilt CPU binaries).
//   node llama_cpp_bench.mjs <model.gguf> <in.json> <out.json>
// in.json:  {"threads": [1, 2], "prompt": [ids], "new_tokens": 64, "repeats": 5}
// out.json: {"llama_cpp": "<release>", "runs": [{"threads": t, "prefill_s": [..], "decode_s": [..],
//            "internal_prefill_tps": [..], "internal_decode_tps": [..], "tokens": [ids]}]}
// Each repeat is a fresh context: the prompt is evaluated and new_tokens + 1 tokens are generated
// greedily. prefill_s / decode_s are wall-clock in this process (prompt to first token; the next
// new_tokens tokens), so they include node-llama-cpp's per-token JS overhead; internal_* are
// llama.cpp's own counters (llama_perf_context: "prompt eval" and "eval"), without it.
import fs from "node:fs";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const [modelPath, inPath, outPath] = process.argv.slice(2);
const input = JSON.parse(fs.readFileSync(inPath, "utf8"));
const perf = [];
const llama = await getLlama({
  gpu: false, build: "never", logLevel: LlamaLogLevel.info,
  logger: (level, message) => { if (message.includes("llama_perf_context_print")) perf.push(message); },
});
const model = await llama.loadModel({ modelPath });
const out = { llama_cpp: llama.llamaCppRelease?.release ?? "unknown", runs: [] };
const tps = (re) => { const m = perf.map((l) => l.match(re)).find(Boolean); return m ? Number(m[1]) : null; };
for (const threads of input.threads) {
  const run = { threads, prefill_s: [], decode_s: [], internal_prefill_tps: [], internal_decode_tps: [], tokens: [] };
  for (let r = 0; r < input.repeats; ++r) {
    const context = await model.createContext({
      contextSize: input.prompt.length + input.new_tokens + 2, batchSize: input.prompt.length, threads, sequences: 1, performanceTracking: true,
    });
    const sequence = context.getSequence();
    const gen = [];
    const t0 = process.hrtime.bigint();
    let t1 = t0;
    for await (const t of sequence.evaluate(input.prompt, { temperature: 0, yieldEogToken: true })) {
      if (gen.length === 0) t1 = process.hrtime.bigint();
      gen.push(t);
      if (gen.length > input.new_tokens) break;
    }
    const t2 = process.hrtime.bigint();
    run.prefill_s.push(Number(t1 - t0) / 1e9);
    run.decode_s.push(Number(t2 - t1) / 1e9);
    perf.length = 0;
    await context.printTimings();
    run.internal_prefill_tps.push(tps(/prompt eval time.*?([\d.]+) tokens per second/));
    run.internal_decode_tps.push(tps(/\beval time.*runs.*?([\d.]+) tokens per second/));
    run.tokens = gen.slice(1, input.new_tokens + 1);
    await context.dispose();
  }
  out.runs.push(run);
}
fs.writeFileSync(outPath, JSON.stringify(out));
await model.dispose();
