#!/usr/bin/env bash
# Installs solo-plugins with everything it needs on a fresh machine (Python 3.9-3.12).
# solo-learn is not on PyPI in a usable version: it is installed from GitHub at the tested
# commit, with setuptools < 81 and without build isolation (its setup.py imports
# pkg_resources), unless a working solo-learn is already importable.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SOLO_COMMIT=9187ea3

$PY -m pip install "torch==2.14.1" "torchvision==0.29.1"
if $PY -c "import solo.methods" >/dev/null 2>&1; then
  echo "solo-learn already importable: $($PY -c 'import solo, os; print(os.path.dirname(solo.__file__))')"
else
  $PY -m pip install "setuptools<81"
  $PY -m pip install --no-build-isolation "solo-learn @ git+https://github.com/vturrisi/solo-learn@${SOLO_COMMIT}"
fi
$PY -m pip install -e ".[test]" "torchmetrics==0.11.4" "lightning==2.1.2"
$PY -c "import solo_plugins, solo.methods; assert 'dhel' in solo.methods.METHODS; print('solo-plugins ready')"
