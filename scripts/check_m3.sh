#!/usr/bin/env bash
# M3 exit criteria on the cpu preset: >= 1M seen tokens, no NaNs, A8->A4 flip at >= 90% of BUDGET_TOKENS,
# post-clip grad norm <= 1.0 over the last 100 steps, loss stable over the last 200 steps.
# usage: scripts/check_m3.sh [--file HEALTH_JSON]   (default: CKPT_DIR/student_health.json of the current settings)
set -euo pipefail
BKD="${BKD:-${BUILD_DIR:-build}/bin/bitnet-kde}"
exec "$BKD" health-check --role student "$@"
