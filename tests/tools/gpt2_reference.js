#!/usr/bin/env node
// Reference GPT-2 BPE ids from the npm package gpt-3-encoder (the JavaScript encoder the C++ one must
// match token for token). Used by tests/core/gpt2_bpe_test.cc and bench/gpt2_bpe_bench.cc.
//
// Usage: node gpt2_reference.js [--encoder-dir DIR] [--strings LIST.json] [--chunk N] [--time] [FILE...]
//   --encoder-dir  the installed gpt-3-encoder package (default: $GPT3_ENCODER_DIR)
//   --strings      a JSON file holding an array of strings to encode
//   --chunk N      call encode() on pieces of about N characters and join the ids. Each piece ends
//                  just before a ' ' that follows a non-space character: the regex always has a token
//                  boundary there and never looks past it (the piece ends in a letter/digit/mark run or a
//                  contraction, none of which can take the space or depend on what follows), so the ids
//                  are those of the whole text. It only avoids the package's quadratic array
//                  concatenation (encode() copies its whole output for every pre-token), which makes a
//                  200 kB document take seconds. 0 (default) = whole inputs.
//   --time         also print {"bytes":N,"seconds":S,"cpu_seconds":C,"mb_per_s":R} to stderr: encode
//                  time only (wall and CPU), files already read and the package already loaded
// Output: one line per input (the strings first, then the files in argument order), each a JSON array
// of ids. Files are read as UTF-8, exactly as the package expects its input.
'use strict';
const fs = require('fs');
const path = require('path');

function usage(msg) {
  process.stderr.write(`gpt2_reference.js: ${msg}\n` +
    'usage: node gpt2_reference.js [--encoder-dir DIR] [--strings LIST.json] [--chunk N] [--time] [FILE...]\n');
  process.exit(2);
}

let encoderDir = process.env.GPT3_ENCODER_DIR || '';
let stringsFile = '';
let time = false;
let chunk = 0;
const files = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--encoder-dir') encoderDir = args[++i] || usage('--encoder-dir needs a value');
  else if (a === '--strings') stringsFile = args[++i] || usage('--strings needs a value');
  else if (a === '--time') time = true;
  else if (a === '--chunk') chunk = Number(args[++i]);
  else if (a.startsWith('--')) usage(`unknown option ${a}`);
  else files.push(a);
}
if (!Number.isInteger(chunk) || chunk < 0) usage('--chunk needs a whole number >= 0');
if (!encoderDir) usage('no encoder dir: pass --encoder-dir or set GPT3_ENCODER_DIR');
if (!fs.existsSync(path.join(encoderDir, 'Encoder.js'))) {
  process.stderr.write(`gpt2_reference.js: gpt-3-encoder not found in '${encoderDir}'; ` +
    'run `bash scripts/setup.sh` (installs it from npm)\n');
  process.exit(1);
}
const { encode } = require(path.resolve(encoderDir, 'Encoder.js'));

const inputs = [];
if (stringsFile) {
  const list = JSON.parse(fs.readFileSync(stringsFile, 'utf8'));
  if (!Array.isArray(list)) usage(`${stringsFile} is not a JSON array of strings`);
  for (const s of list) inputs.push(String(s));
}
for (const f of files) inputs.push(fs.readFileSync(f, 'utf8'));

function encodeInChunks(text) {
  const ids = [];
  let from = 0;
  let cut = text.indexOf(' ', chunk);
  while (cut !== -1) {
    if (/\s/.test(text[cut - 1])) {  // a space after whitespace: not a safe cut, try the next one
      cut = text.indexOf(' ', cut + 1);
      continue;
    }
    for (const id of encode(text.slice(from, cut))) ids.push(id);
    from = cut;
    cut = text.indexOf(' ', from + chunk);
  }
  for (const id of encode(text.slice(from))) ids.push(id);
  return ids;
}

const start = process.hrtime.bigint();
const cpuStart = process.cpuUsage();
const results = inputs.map((text) => (chunk > 0 ? encodeInChunks(text) : encode(text)));
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const cpu = process.cpuUsage(cpuStart);
const cpuSeconds = (cpu.user + cpu.system) / 1e6;

process.stdout.write(results.map((ids) => JSON.stringify(ids) + '\n').join(''));
if (time) {
  const bytes = inputs.reduce((n, s) => n + Buffer.byteLength(s, 'utf8'), 0);
  process.stderr.write(JSON.stringify({ bytes, seconds, cpu_seconds: cpuSeconds, mb_per_s: bytes / 1e6 / seconds }) + '\n');
}
