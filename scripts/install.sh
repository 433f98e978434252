#!/usr/bin/env bash
# Installs solo-plugins with everything it needs on a fresh machine (Python 3.9-3.12), at the
# versions pinned in constraints.txt. solo-learn is not on PyPI in a usable version: unless
# its distribution is already installed, it comes from GitHub at the tested commit, built with
# setuptools < 81 and without build isolation (its setup.py imports pkg_resources). An
# installed solo-learn whose dependencies are missing gets them from PyPI. The package is
# installed non-editable, so that its solo_plugins.pth gives solo-learn's own scripts the
# methods in every process (docs/architecture.md); for development use pip install -e instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SOLO_COMMIT=9187ea3
PIP=("$PY" -m pip install -c constraints.txt)

"${PIP[@]}" torch torchvision
if "$PY" -c "import importlib.metadata as m; m.distribution('solo-learn')" >/dev/null 2>&1; then
  echo "solo-learn $("$PY" -c "import importlib.metadata as m; print(m.version('solo-learn'))") is installed; checking its dependencies"
  # solo-learn's own requirements (its setup.py), from PyPI.
  "${PIP[@]}" einops lightning "torchmetrics<0.12" tqdm wandb scipy timm scikit-learn hydra-core
else
  "${PIP[@]}" "setuptools<81"
  "${PIP[@]}" --no-build-isolation "solo-learn @ git+https://github.com/vturrisi/solo-learn@${SOLO_COMMIT}"
fi
# NVIDIA DALI (data.format: dali, the paper's loader) has wheels for Linux on x86_64 and aarch64 only.
platform="$(uname -s)/$(uname -m)"
case "$platform" in
  Linux/x86_64 | Linux/aarch64)
    if ! "${PIP[@]}" ".[all,dali]"; then
      echo "NOTE: NVIDIA DALI could not be installed for this Python on $platform; installing without it." >&2
      echo "      data.format: dali will not be available; data.format: image_folder works everywhere." >&2
      "${PIP[@]}" ".[all]"
    fi
    ;;
  *)
    echo "NOTE: NVIDIA DALI has no wheels for $platform (only Linux x86_64 and aarch64): installed without it." >&2
    echo "      data.format: dali will not be available; data.format: image_folder works everywhere." >&2
    "${PIP[@]}" ".[all]"
    ;;
esac
# lightly, for the parity tests and docs/elsewhere.md: without its pytorch-lightning (constraints.txt)
"${PIP[@]}" --no-deps lightly
"$PY" -c "import solo_plugins, solo.methods; assert 'dhel' in solo.methods.METHODS; print('solo-plugins ready')"
"$PY" - <<'PYEOF'
import importlib.metadata as m
for name in ("solo-plugins", "solo-learn", "torch", "torchvision", "lightning", "torchmetrics", "hydra-core",
             "omegaconf", "wandb", "scikit-learn", "matplotlib", "pytest", "nvidia-dali-cuda120"):
    try:
        print(f"  {name} {m.version(name)}")
    except m.PackageNotFoundError:
        print(f"  {name} (not installed)")
PYEOF
