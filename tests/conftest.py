import os
import warnings

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
warnings.filterwarnings("ignore", category=DeprecationWarning)
if os.environ.get("PYTEST_XDIST_WORKER"):
    # README's `-n 2`: two workers on two cores, one torch thread each, in their subprocesses
    # too (two threads each oversubscribe the cores and the suite runs slower than one worker)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "configs")
#: the latent-recovery studies' configs beside the sweeps' in configs/sweep
STUDIES = {"identifiability.yaml", "identifiability_converged.yaml", "identifiability_selection.yaml",
           "identifiability_selected.yaml",
           "finite_batch_optimum.yaml"}
SWEEP_CONFIGS = sorted(n for n in os.listdir(os.path.join(CONFIGS, "sweep")) if n.endswith(".yaml") and n not in STUDIES)


@pytest.fixture(scope="session")
def digits_root(tmp_path_factory):
    """scikit-learn's digits as a solo-learn custom image folder (train/ and val/)."""
    from solo_plugins.data.export import export_digits

    return str(export_digits(tmp_path_factory.mktemp("datasets") / "digits"))


def compose(kind: str, dataset: str, name: str, overrides=()):
    from solo_plugins.commands._hydra import compose as hydra_compose

    return hydra_compose(os.path.join(CONFIGS, kind, dataset), name, list(overrides))


def digits_overrides(root, tmp_path, extra=()):
    return [
        f"data.train_path={root}/train",
        f"data.val_path={root}/val",
        f"checkpoint.dir={tmp_path}/trained_models",
        *extra,
    ]


#: the files of the longest tests, started first so that two xdist workers (`--dist loadfile`)
#: end together instead of one waiting for the other's SLURM jobs at the end
FIRST = ("test_slurm.py", "test_packaging.py", "test_sweep.py", "test_pipeline.py", "test_gpu_check.py",
         "test_mid_epoch_resume.py", "test_converged.py", "test_identifiability.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(os.path.basename(str(item.fspath)), len(FIRST)))


def pytest_configure(config):
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False  # xdist would order the files by their number of tests
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    config.addinivalue_line("markers", "slurm: needs a reachable SLURM cluster (scripts/slurm_local.sh up)")
    config.addinivalue_line("markers", "slow: left out of the quick lane (pytest -m \"not slow\")")
