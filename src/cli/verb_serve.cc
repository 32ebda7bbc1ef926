// `serve`: an OpenAI-compatible HTTP server in front of the local teacher (TEACHER_MODEL), or with
// --engine in front of the exported student through the packed engine (no LibTorch needed), bound
// to SERVE_HOST:SERVE_PORT (127.0.0.1 unless told otherwise). Stops on Ctrl-C / SIGTERM.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <thread>

#include "core/config/run_layout.h"
#include "cli/cli.h"
#include "core/engine/engine_language_model.h"
#include "core/format/hf_bitnet.h"
#include "core/serve/openai_server.h"
#include "core/teacher/local_provider.h"
#include "core/tokenizer/run_tokenizers.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/log.h"

namespace bkd::cli {
namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

void setup_serve(CLI::App& app, Cli& cli) {
  auto* sub = app.add_subcommand(
      "serve", "OpenAI-compatible server for the local teacher, or the exported student via --engine (/v1/chat/completions with logprobs)");
  static std::string model, engine_file, tokenizer, mode;
  static bool engine = false;
  static int port = -1;
  sub->add_option("--model", model, "local checkpoint name (default: TEACHER_MODEL)");
  sub->add_flag("--engine", engine, "serve the exported student through the packed engine (file: --engine-file)");
  sub->add_option("--engine-file", engine_file, "packed student model, or a Hugging Face folder from export --format hf (default: CKPT_DIR/student.gguf; implies --engine)");
  sub->add_option("--tokenizer", tokenizer, "student tokenizer for --engine: a SentencePiece .model or a tokenizer folder (default: STUDENT_TOKENIZER's)");
  sub->add_option("--mode", mode, "activations for --engine: a8 or a4 (default: the mode the file records)")
      ->check(CLI::IsMember({"a8", "a4"}));
  sub->add_option("--port", port, "port (default: SERVE_PORT; 0 picks a free one)");
  sub->callback([&cli] {
    const Settings& s = cli.settings();
    std::shared_ptr<LocalLanguageModel> lm;
    if (engine || !engine_file.empty()) {
      if (!model.empty()) throw UsageError("--model names a teacher checkpoint; with --engine pass --engine-file");
      const std::string file = engine_file.empty() ? RunLayout(s).student_gguf() : engine_file;
      std::optional<QuantMode> m;
      if (!mode.empty()) m = quant_mode_from_string(mode);
      // A Hugging Face folder (export --format hf) carries its own tokenizer.
      const bool hf = is_hf_folder(file);
      auto tok = !tokenizer.empty() ? load_tokenizer_path(tokenizer) : hf ? load_tokenizer_path(file) : load_student_tokenizer(s);
      auto elm = hf ? make_engine_language_model("student-hf", std::make_shared<PackedModel>(read_hf_bitnet(file)),
                                                 std::move(tok), m, static_cast<int>(s.i64("THREADS")))
                    : load_engine_language_model(file, std::move(tok), m, static_cast<int>(s.i64("THREADS")));
      log_info("serve: " + file + " through the packed engine (" + to_string(elm->engine().mode()) + ", " +
               elm->engine().kernels().name + " kernels, " + std::to_string(elm->engine().threads()) + " threads)");
      lm = std::move(elm);
    } else {
      if (!tokenizer.empty() || !mode.empty()) throw UsageError("--tokenizer and --mode apply to --engine only");
      lm = load_local_model(s, model.empty() ? s.str("TEACHER_MODEL") : model);
    }
    auto provider = std::make_shared<LocalProvider>(lm);
    ServeOptions o;
    o.host = s.str("SERVE_HOST");
    o.port = port >= 0 ? port : static_cast<int>(s.i64("SERVE_PORT"));
    o.api_key = s.str("SERVE_API_KEY");
    o.max_tokens = static_cast<int>(s.i64("SERVE_MAX_TOKENS"));
    o.max_body_bytes = static_cast<size_t>(s.i64("SERVE_MAX_BODY_BYTES"));
    if (o.host != "127.0.0.1" && o.host != "localhost" && o.host != "::1" && o.api_key.empty())
      log_warn("serve: listening on " + o.host + " without SERVE_API_KEY: anyone who can reach it can use it");
    OpenAiServer server(provider, o);
    server.start();
    std::printf("serving '%s' at %s (key %s); Ctrl-C stops\n", provider->model().c_str(), server.base_url().c_str(),
                o.api_key.empty() ? "not required" : "required");
    std::fflush(stdout);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    server.stop();
    std::printf("serve: stopped\n");
  });
}

RegisterVerb reg_serve("serve", 110, setup_serve);

}  // namespace
}  // namespace bkd::cli
