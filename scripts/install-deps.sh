#!/usr/bin/env bash
# Installs what building, running and testing Switchyard needs on Debian/Ubuntu:
# SQLite and hiredis headers, pkg-config, redis-server, wrk, curl and Python's venv module;
# with --test also what the tests drive: Chromium and its WebDriver (the portal), and
# promtool, from Debian's prometheus package (the alert rules in deploy/).
# Safe to run again: it installs only what is missing.
set -euo pipefail

packages=(libsqlite3-dev libhiredis-dev pkg-config redis-server wrk curl ca-certificates python3 python3-venv)
if [[ "${1:-}" == "--test" ]]; then
    packages+=(chromium chromium-driver fonts-dejavu-core prometheus)
fi
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

if ((${#missing[@]})); then
    echo "==> installing system packages: ${missing[*]}"
    sudo=""
    if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
    if [[ -x /opt/swift/usr/bin/swift ]]; then
        echo "==> Swift found at /opt/swift/usr/bin (add it to PATH)"
    else
        echo "error: Swift 6 is required (https://www.swift.org/install/)" >&2
        exit 1
    fi
fi
