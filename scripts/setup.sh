#!/usr/bin/env bash
# Install everything the harness needs on a Debian machine, idempotently:
#   - Debian packages: kamailio (+ TLS modules), rtpengine-daemon, sip-tester (SIPp), sox, espeak-ng,
#     asterisk-core-sounds-en-wav, openssl (lab certificates), iproute2 (impairment namespaces),
#     chromium (the report's browser test and PDF/screenshot export)
#   - a virtual environment at .venv with the harness and its Python dependencies (pjsua2 wheel,
#     numpy, scipy, click, locust, pytest, ruff, mypy)
# Run as root, or as a user with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(kamailio kamailio-tls-modules rtpengine-daemon sip-tester sox espeak-ng asterisk-core-sounds-en-wav
              openssl iproute2 chromium)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo_cmd=(sudo); else
    echo "setup: needs root (or sudo) to install Debian packages: ${APT_PACKAGES[*]}" >&2; exit 2
  fi
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.harness-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing the harness and its Python dependencies into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
  touch "$stamp"
fi
echo "setup: ready ($(.venv/bin/harness --version))"
