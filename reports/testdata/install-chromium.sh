#!/usr/bin/env bash
# Installs Debian's chromium for the report's browser test. Quick when it is
# there already; needs root (apt-get) otherwise.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "install-chromium.sh: chromium is missing and installing it needs root (apt-get install chromium)" >&2
	exit 1
fi
echo "install-chromium.sh: apt-get install chromium (once per machine)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
command -v chromium
