#!/usr/bin/env bash
# Runs every Switchyard test: unit, component and live Swift tests (real SQLite files,
# real HTTP servers on port 0), a short seeded run of every fuzz target, then the
# end-to-end tests that drive a running `switchyard serve` with the official openai
# Python SDK (the hostile-input suite among them) and the portal in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
# bcrypt's lowest allowed work factor keeps the many sign-ups of the tests quick; served
# passwords use 12 unless told otherwise.
export SWITCHYARD_BCRYPT_COST="${SWITCHYARD_BCRYPT_COST:-10}"

scripts/install-deps.sh --test

echo "==> Python environment (the openai SDK; aiosmtpd, which the Swift mail tests use too)"
if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/e2e/requirements.txt

echo "==> building (debug)"
swift build --build-tests

echo "==> Swift tests"
swift test --skip-build

echo "==> fuzz targets: a short seeded run of each (scripts/fuzz.sh --time 60 for a long one)"
scripts/fuzz.sh

echo "==> end-to-end tests (official openai SDK against switchyard serve)"
# The portal's tests save a screenshot of every page under var/portal-screenshots/.
SWITCHYARD_BIN="$(swift build --show-bin-path)/switchyard" .venv/bin/python -m pytest tests/e2e -v
