// `serve`: an OpenAI-compatible HTTP server in front of the local teacher (TEACHER_MODEL), bound to
// SERVE_HOST:SERVE_PORT (127.0.0.1 unless told otherwise). Stops on Ctrl-C / SIGTERM.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <thread>

#include "cli/cli.h"
#include "core/http/openai_server.h"
#include "core/teacher/local_provider.h"
#include "core/util/error.h"
#include "core/util/log.h"

namespace bkd::cli {
namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

void setup_serve(CLI::App& app, Cli& cli) {
  auto* sub = app.add_subcommand("serve", "OpenAI-compatible server for the local teacher (/v1/chat/completions with logprobs)");
  static std::string model;
  static int port = -1;
  sub->add_option("--model", model, "local checkpoint name (default: TEACHER_MODEL)");
  sub->add_option("--port", port, "port (default: SERVE_PORT; 0 picks a free one)");
  sub->callback([&cli] {
    const Settings& s = cli.settings();
    const std::string name = model.empty() ? s.str("TEACHER_MODEL") : model;
    auto provider = std::make_shared<LocalProvider>(std::shared_ptr<LocalLanguageModel>(load_local_model(s, name)));
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
