"""End to end through the commands on a real image folder (scikit-learn's digits)."""

import glob
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("solo.methods")

from solo_plugins.checkpoints import backbone_state  # noqa: E402
from solo_plugins.commands.linear import build_backbone, linear_eval  # noqa: E402
from solo_plugins.commands.pretrain import pretrain  # noqa: E402
from solo_plugins.methods.config import ConfigError  # noqa: E402

from tests.conftest import CONFIGS, compose, digits_overrides  # noqa: E402

QUICK = ["max_epochs=1", "+limit_train_batches=2", "+limit_val_batches=1", "optimizer.batch_size=32"]


@pytest.fixture(scope="module")
def checkpoint(digits_root, tmp_path_factory):
    """One quick DHEL pretraining, read (never written) by the tests of what follows it."""
    out = tmp_path_factory.mktemp("pretrained")
    return pretrain(compose("pretrain", "digits", "dhel.yaml", digits_overrides(digits_root, out, QUICK)))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["infonce", "dhel", "kcl", "dcl", "dclw", "simclr", "dhel_4views", "kcl_4views"])
def test_pretrain_command_on_real_image_folder(method, digits_root, tmp_path):
    cfg = compose("pretrain", "digits", f"{method}.yaml", digits_overrides(digits_root, tmp_path, QUICK))
    ckpt = pretrain(cfg)
    assert ckpt is not None and os.path.exists(ckpt)


@pytest.mark.slow
def test_checkpoint_loads_into_linear_eval_with_every_backbone_key(checkpoint, digits_root, tmp_path):
    ckpt = checkpoint
    lin = compose(
        "linear",
        "digits",
        "linear.yaml",
        digits_overrides(digits_root, tmp_path, QUICK[:3] + [f"pretrained_feature_extractor='{ckpt}'"]),
    )
    # Independent check of what solo's loader (strict=False) would silently drop.
    backbone = build_backbone(lin)
    state = backbone_state(ckpt)
    assert set(state) == set(backbone.state_dict())
    metrics = linear_eval(lin)
    assert "val_acc1" in metrics and 0 <= metrics["val_acc1"] <= 100


@pytest.mark.parametrize("override,match", [
    ("+feature_batchnorm=maybe", "feature_batchnorm must be true or false"),
    ("+data.train_augmentation=1", "data.train_augmentation must be true or false"),
    ("~data.image_size", "needs data.image_size"),
    ("+cache_features=1", "cache_features must be true or false"),
    ("+cache_features=true", "cache_features: true needs data.train_augmentation: false"),
    ("+cache_features=true +data.train_augmentation=false checkpoint.enabled=true",
     "cache_features: true needs checkpoint.enabled: false"),
    ("+cache_features=true +data.train_augmentation=false +finetune=true", "needs finetune: false"),
    ("+cache_features=true +data.train_augmentation=false +mixup=0.8", "needs mixup: 0 and cutmix: 0"),
    ("device=tpu", "device: device must be one of auto, cpu, cuda"),
])
def test_linear_options_are_checked_before_any_checkpoint_is_read(override, match, digits_root, tmp_path):
    extra = ["pretrained_feature_extractor=/no/such.ckpt", *override.split()]
    if override.startswith("~"):
        extra.append("+data.train_augmentation=false")
    lin = compose("linear", "digits", "linear.yaml", digits_overrides(digits_root, tmp_path, extra))
    with pytest.raises(ConfigError, match=match):
        linear_eval(lin)


@pytest.mark.slow
def test_cached_features_train_the_classifier_as_the_images_do(checkpoint, digits_root, tmp_path):
    ckpt = checkpoint
    runs = {}
    for cache in ("false", "true"):
        lin = compose("linear", "digits", "linear.yaml", digits_overrides(digits_root, tmp_path, [
            f"pretrained_feature_extractor='{ckpt}'", "max_epochs=3", "optimizer.batch_size=64",
            "+feature_batchnorm=true", "+data.train_augmentation=false", f"+cache_features={cache}"]))
        runs[cache] = linear_eval(lin)
    # 3 epochs of shuffled batches through solo's Trainer: the same batches, in the same
    # order, reach the same classifier (up to the backbone's float rounding per batch)
    for key in ("train_loss", "val_loss", "val_acc1"):
        assert runs["true"][key] == pytest.approx(runs["false"][key], rel=1e-4, abs=1e-4), key
    assert runs["true"]["val_acc1"] > 30  # it trained: 10 classes


def test_whole_image_training_transform_is_the_validation_one():
    from PIL import Image

    from solo_plugins.data.transforms import small_image_pipeline

    image = Image.fromarray((np.arange(16 * 16 * 3) % 255).astype("uint8").reshape(16, 16, 3))
    whole, cropped = small_image_pipeline(8, augment=False), small_image_pipeline(8)
    assert torch.equal(whole["T_train"](image), whole["T_val"](image))
    torch.manual_seed(0)
    assert any(not torch.equal(cropped["T_train"](image), cropped["T_val"](image)) for _ in range(5))


@pytest.mark.slow
def test_feature_batchnorm_standardizes_the_features_before_the_classifier(checkpoint, digits_root, tmp_path):
    ckpt = checkpoint
    lin = compose("linear", "digits", "linear.yaml", digits_overrides(
        digits_root, tmp_path, QUICK[:3] + [f"pretrained_feature_extractor='{ckpt}'", "+feature_batchnorm=true",
                                            "+data.train_augmentation=false"]))
    seen = {}
    original = torch.nn.BatchNorm1d.forward

    def spy(module, x):
        out = original(module, x)
        if not module.affine and module.training:
            seen["in"], seen["out"] = x.detach(), out.detach()
        return out

    torch.nn.BatchNorm1d.forward = spy
    try:
        metrics = linear_eval(lin)
    finally:
        torch.nn.BatchNorm1d.forward = original
    assert 0 <= metrics["val_acc1"] <= 100
    # a training batch as the linear layer sees it: each feature centred and scaled to
    # variance v / (v + eps), v its batch variance (BatchNorm's eps = 1e-5)
    x, out = seen["in"], seen["out"]
    v = x.var(dim=0, unbiased=False)
    assert out.mean(dim=0).abs().max() < 1e-4
    torch.testing.assert_close(out.var(dim=0, unbiased=False), v / (v + 1e-5), rtol=1e-3, atol=1e-4)


@pytest.mark.slow
def test_auto_resume_continues_the_run(digits_root, tmp_path, capsys):
    overrides = digits_overrides(digits_root, tmp_path, ["max_epochs=2", "+checkpoint.keep_prev=True"] + QUICK[1:])
    last = pretrain(compose("pretrain", "digits", "kcl.yaml", overrides))
    # Make it a run interrupted after its first epoch: only that epoch's checkpoint is left.
    os.remove(last)
    (first,) = glob.glob(os.path.join(os.path.dirname(last), "*.ckpt"))
    assert torch.load(first, weights_only=False)["epoch"] == 0
    capsys.readouterr()
    second = pretrain(compose("pretrain", "digits", "kcl.yaml", overrides))
    assert f"'{first}'" in capsys.readouterr().out
    state = torch.load(second, weights_only=False)
    assert state["epoch"] == 1 and state["global_step"] == 4


@pytest.mark.slow
def test_resuming_a_finished_run_returns_its_checkpoint(digits_root, tmp_path):
    # a sweep killed after a run's last checkpoint was written resumes it with nothing to do
    overrides = digits_overrides(digits_root, tmp_path, QUICK + ["auto_resume.enabled=True"])
    first = pretrain(compose("pretrain", "digits", "infonce.yaml", overrides))
    again = pretrain(compose("pretrain", "digits", "infonce.yaml", overrides))
    assert again == first and torch.load(again, weights_only=False)["epoch"] == 0


@pytest.mark.parametrize(
    "method,override,key",
    [
        ("kcl", "method_kwargs.kernel=laplace", "method_kwargs.kernel"),
        ("dhel", "method_kwargs.temperature=0", "method_kwargs.temperature"),
        ("dclw", "method_kwargs.weight_sigma=-1", "method_kwargs.weight_sigma"),
        ("kcl", "method_kwargs.gamma=-2", "method_kwargs.gamma"),
        ("dhel", "~method_kwargs.proj_output_dim", "method_kwargs.proj_output_dim"),
        ("dcl", "augmentations.0.num_crops=3", "num_crops"),
        ("infonce", "optimizer.batch_size=1", "optimizer.batch_size"),
        ("kcl", "method_kwargs.projector=bn", "method_kwargs.projector"),
        ("dclw", "+method_kwargs.weight_grad=yes", "method_kwargs.weight_grad"),
    ],
)
def test_bad_configs_fail_at_config_time_naming_the_key(method, override, key, digits_root, tmp_path):
    cfg = compose("pretrain", "digits", f"{method}.yaml", digits_overrides(digits_root, tmp_path, [override]))
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        pretrain(cfg)
    assert not os.path.exists(tmp_path / "trained_models")  # nothing ran


def _shipped_configs():
    for path in sorted(glob.glob(os.path.join(CONFIGS, "pretrain", "*", "*.yaml"))):
        yield os.path.basename(os.path.dirname(path)), os.path.basename(path)


@pytest.mark.slow
@pytest.mark.parametrize("dataset,name", list(_shipped_configs()))
def test_every_shipped_pretrain_config_parses_and_builds(dataset, name, digits_root):
    from omegaconf import OmegaConf
    from solo.args.pretrain import parse_cfg
    from solo.methods import METHODS

    overrides = [f"data.train_path={digits_root}/train"] if dataset in ("digits", "fashion_mnist") else []
    cfg = compose("pretrain", dataset, name, overrides)
    OmegaConf.set_struct(cfg, False)
    cfg = parse_cfg(cfg)
    assert cfg.data.num_large_crops == (4 if name.endswith("_4views.yaml") else 2)
    model = METHODS[cfg.method](cfg)
    assert model(torch.randn(2, 3, 32, 32))["z"].shape[1] == cfg.method_kwargs.proj_output_dim


@pytest.mark.slow
@pytest.mark.parametrize("dataset", sorted(os.listdir(os.path.join(CONFIGS, "linear"))))
def test_every_shipped_linear_config_parses_and_builds(dataset, digits_root):
    from omegaconf import OmegaConf
    from solo.args.linear import parse_cfg

    overrides = ["pretrained_feature_extractor=x.ckpt"]
    if dataset in ("digits", "fashion_mnist"):
        overrides.append(f"data.train_path={digits_root}/train")
    cfg = compose("linear", dataset, "linear.yaml", overrides)
    OmegaConf.set_struct(cfg, False)
    cfg = parse_cfg(cfg)
    assert build_backbone(cfg)(torch.randn(2, 3, 32, 32)).dim() == 2


def _run(args, cwd, timeout=600):
    env = dict(os.environ, PYTHONWARNINGS="ignore", WANDB_MODE="offline")
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.mark.slow
@pytest.mark.parametrize("method,chunks", [  # dhel unchunked: the solo-plugins command's test below
    ("kcl", []), ("dhel", ["+method_kwargs.loss_chunk_size=12", "+method_kwargs.forward_chunk_size=12"]),
], ids=["kcl", "dhel-chunked"])
def test_two_process_cpu_ddp_fit(method, chunks, digits_root, tmp_path):
    args = [sys.executable, "-m", "solo_plugins.commands.pretrain", "--config-path",
            os.path.join(CONFIGS, "pretrain", "digits"), "--config-name", f"{method}.yaml",
            "devices=[0,1]", "strategy=ddp", *digits_overrides(digits_root, tmp_path, QUICK + chunks)]
    _run(args, tmp_path)
    ckpts = glob.glob(str(tmp_path / "trained_models" / method / "*" / "*.ckpt"))
    assert len(ckpts) == 1
    assert torch.load(ckpts[0], weights_only=False)["global_step"] == 2


@pytest.mark.slow
def test_two_process_cpu_ddp_fit_through_the_solo_plugins_command(digits_root, tmp_path):
    """``solo-plugins pretrain``: Lightning starts rank 1 by re-running the program, which must
    run the same subcommand (with the plugin registered) there too."""
    command = os.path.join(os.path.dirname(sys.executable), "solo-plugins")
    if not os.path.exists(command):
        pytest.skip(f"{command} is not installed (pip install -e .)")
    _run([command, "pretrain", "--config-path", os.path.join(CONFIGS, "pretrain", "digits"), "--config-name",
          "dhel.yaml", "devices=[0,1]", "strategy=ddp", *digits_overrides(digits_root, tmp_path, QUICK)], tmp_path)
    (ckpt,) = glob.glob(str(tmp_path / "trained_models" / "dhel" / "*" / "*.ckpt"))
    assert torch.load(ckpt, weights_only=False)["global_step"] == 2


@pytest.mark.slow
def test_wandb_offline_run(digits_root, tmp_path):
    overrides = digits_overrides(digits_root, tmp_path, QUICK + ["wandb=offline"])
    _run([sys.executable, "-m", "solo_plugins.commands.pretrain", "--config-path",
          os.path.join(CONFIGS, "pretrain", "digits"), "--config-name", "dhel.yaml", *overrides], tmp_path)
    assert glob.glob(str(tmp_path / "wandb" / "offline-run-*"))


def test_dali_pretraining_on_cpu_over_real_image_folder(digits_root, tmp_path):
    pytest.importorskip("nvidia.dali")
    overrides = digits_overrides(
        digits_root, tmp_path, QUICK + ["data.format=dali", "+dali.device=cpu", "data.num_workers=1"]
    )
    ckpt = pretrain(compose("pretrain", "digits", "dhel.yaml", overrides))
    assert torch.load(ckpt, weights_only=False)["global_step"] == 2


def _solo_script(tmp_path, name):
    """A solo-learn checkout's unmodified script when SOLO_LEARN_CHECKOUT names one (run
    locally against vturrisi/solo-learn at 9187ea3: main_pretrain.py then main_linear.py);
    otherwise a stand-in doing what solo's scripts do with the registries: look the method
    up in solo.methods.METHODS and the backbone in BaseMethod._BACKBONES at run time."""
    checkout = os.environ.get("SOLO_LEARN_CHECKOUT")
    if checkout:
        return os.path.join(checkout, name)
    script = tmp_path / name
    script.write_text(
        "import hydra\nfrom omegaconf import OmegaConf\nfrom solo.args.pretrain import parse_cfg\n"
        "from solo.methods import METHODS\nfrom solo.methods.base import BaseMethod\n\n"
        "@hydra.main(version_base='1.2')\ndef main(cfg):\n"
        "    OmegaConf.set_struct(cfg, False)\n    cfg = parse_cfg(cfg)\n"
        "    assert cfg.backbone.name in BaseMethod._BACKBONES\n"
        "    model = METHODS[cfg.method](cfg)\n    print('built', type(model).__name__)\n\n"
        "if __name__ == '__main__':\n    main()\n"
    )
    return str(script)


def test_run_solo_script_with_plugin_registered(digits_root, tmp_path):
    # On the CPU, solo's scripts need devices as a string: parse_cfg counts devices with
    # len() and Lightning's CPU accelerator takes a count ('1' satisfies both).
    overrides = digits_overrides(digits_root, tmp_path, QUICK + ["devices='1'"])
    pretrain_script = _solo_script(tmp_path, "main_pretrain.py")
    result = _run([sys.executable, "-m", "solo_plugins.commands.run_solo_script", pretrain_script,
                   "--config-path", os.path.join(CONFIGS, "pretrain", "digits"), "--config-name", "kcl.yaml",
                   *overrides], tmp_path)
    if not os.environ.get("SOLO_LEARN_CHECKOUT"):
        assert "built KCL" in result.stdout
        return
    (ckpt,) = glob.glob(str(tmp_path / "trained_models" / "kcl" / "*" / "*.ckpt"))
    _run([sys.executable, "-m", "solo_plugins.commands.run_solo_script", _solo_script(tmp_path, "main_linear.py"),
          "--config-path", os.path.join(CONFIGS, "linear", "digits"), "--config-name", "linear.yaml",
          *overrides, f"pretrained_feature_extractor='{ckpt}'"], tmp_path)


_DDP_STAND_IN = """
import hydra, torch
from lightning.pytorch import Trainer
from omegaconf import OmegaConf
from solo.args.pretrain import parse_cfg
from solo.methods import METHODS
from torch.utils.data import DataLoader, Dataset


class Views(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return i, [torch.randn(3, 16, 16, generator=g) for _ in range(2)], i % 10


@hydra.main(version_base="1.2")
def main(cfg):
    OmegaConf.set_struct(cfg, False)
    cfg = parse_cfg(cfg)
    model = METHODS[cfg.method](cfg)  # what solo's main_pretrain.py does, in every rank
    trainer = Trainer(accelerator="cpu", devices=2, strategy="ddp", max_steps=1, logger=False,
                      enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(model, DataLoader(Views(), batch_size=4))
    with open(f"trained-rank{trainer.global_rank}.txt", "w") as f:
        f.write(type(model).__name__)


if __name__ == "__main__":
    main()
"""


@pytest.mark.slow
def test_two_process_ddp_through_solo_scripts_registers_in_every_rank(digits_root, tmp_path):
    """Lightning starts rank 1 by re-running the script: the plugin must be registered there
    too. With SOLO_LEARN_CHECKOUT, solo-learn's own main_pretrain.py then main_linear.py
    with 2 CPU processes; otherwise a stand-in that looks the method up as solo's does."""
    checkout = os.environ.get("SOLO_LEARN_CHECKOUT")
    ddp = ["strategy=ddp", "devices='2'"]
    overrides = digits_overrides(digits_root, tmp_path, QUICK + ddp)
    if not checkout:
        script = tmp_path / "main_pretrain.py"
        script.write_text(_DDP_STAND_IN)
        out = _run([sys.executable, "-m", "solo_plugins.commands.run_solo_script", str(script), "--config-path",
                    os.path.join(CONFIGS, "pretrain", "digits"), "--config-name", "dhel.yaml", *overrides], tmp_path)
        assert [(tmp_path / f"trained-rank{r}.txt").read_text() for r in (0, 1)] == ["DHEL", "DHEL"], out.stdout
        return
    _run([sys.executable, "-m", "solo_plugins.commands.run_solo_script", os.path.join(checkout, "main_pretrain.py"),
          "--config-path", os.path.join(CONFIGS, "pretrain", "digits"), "--config-name", "dhel.yaml", *overrides],
         tmp_path)
    (ckpt,) = glob.glob(str(tmp_path / "trained_models" / "dhel" / "*" / "*.ckpt"))
    assert torch.load(ckpt, weights_only=False)["global_step"] == 2
    _run([sys.executable, "-m", "solo_plugins.commands.run_solo_script", os.path.join(checkout, "main_linear.py"),
          "--config-path", os.path.join(CONFIGS, "linear", "digits"), "--config-name", "linear.yaml",
          *digits_overrides(digits_root, tmp_path, ["max_epochs=1", "+limit_train_batches=2",
                                                    "+limit_val_batches=1", *ddp]),
          f"pretrained_feature_extractor='{ckpt}'"], tmp_path)


def test_metrics_and_knn_commands_on_a_checkpoint(checkpoint, digits_root, tmp_path):
    ckpt = checkpoint
    common = ["--config-path", os.path.join(CONFIGS, "knn"), "--config-name", "digits.yaml",
              f"pretrained_checkpoint_dir={os.path.dirname(ckpt)}", f"data.train_path={digits_root}/train",
              f"data.val_path={digits_root}/val", "+max_samples=128"]
    out = _run([sys.executable, "-m", "solo_plugins.commands.metrics", *common], tmp_path).stdout
    assert '"z_wasserstein_uniformity"' in out and '"feats_effective_rank"' in out
    out = _run([sys.executable, "-m", "solo_plugins.commands.knn", *common, "k=[5]"], tmp_path).stdout
    assert "backbone k=5 euclidean" in out and "acc@1=" in out


# Every command as `python -m` runs it (its own __main__, Hydra's app included), one after the
# other in one interpreter: the working directory is what is checked, not the process.
_COMMANDS_IN_TURN = """
import glob, json, runpy, sys
from hydra.core.global_hydra import GlobalHydra

out, steps = sys.argv[1], json.loads(sys.argv[2])
for module, args in steps:
    args = [a.replace("{CKPT}", (glob.glob(out + "/kcl/*/*.ckpt") or ["none"])[0]) for a in args]
    args = [a.replace("{CKPT_DIR}", (glob.glob(out + "/kcl/*") or ["none"])[0]) for a in args]
    GlobalHydra.instance().clear()
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


@pytest.mark.slow
def test_every_command_writes_only_under_the_folders_it_is_given(digits_root, tmp_path):
    import json

    empty, out = tmp_path / "cwd", tmp_path / "out"
    empty.mkdir()
    data = [f"data.train_path={digits_root}/train", f"data.val_path={digits_root}/val"]
    knn = ["--config-path", os.path.join(CONFIGS, "knn"), "--config-name", "digits.yaml", *data,
           "pretrained_checkpoint_dir={CKPT_DIR}"]
    steps = [
        ("solo_plugins.commands.pretrain", ["--config-path", os.path.join(CONFIGS, "pretrain", "digits"),
                                            "--config-name", "kcl.yaml", *data, f"checkpoint.dir={out}", *QUICK]),
        ("solo_plugins.commands.linear", ["--config-path", os.path.join(CONFIGS, "linear", "digits"),
                                          "--config-name", "linear.yaml", *data, f"checkpoint.dir={out}/linear",
                                          "max_epochs=1", "+limit_train_batches=2",
                                          "pretrained_feature_extractor='{CKPT}'"]),
        ("solo_plugins.commands.knn", [*knn, "k=[5]"]),
        ("solo_plugins.commands.metrics", [*knn, "+max_samples=64"]),
        ("solo_plugins.data.export", ["digits", str(tmp_path / "exported")]),
    ]
    ran = _run([sys.executable, "-c", _COMMANDS_IN_TURN, str(out), json.dumps(steps)], empty)
    assert len(glob.glob(str(out / "kcl" / "*" / "*.ckpt"))) == 1
    assert "backbone k=5 euclidean" in ran.stdout and '"z_wasserstein_uniformity"' in ran.stdout
    assert os.listdir(tmp_path / "exported")
    assert os.listdir(empty) == []


@pytest.mark.slow
def test_a_checkpoint_of_another_backbone_is_refused_naming_the_keys(checkpoint):
    from solo_plugins.checkpoints import CheckpointMismatchError, load_backbone

    ckpt = checkpoint
    from solo.methods.base import BaseMethod

    resnet = BaseMethod._BACKBONES["resnet18"](method=None)
    with pytest.raises(CheckpointMismatchError, match=r"missing keys \['bn1.*unexpected keys \['features"):
        load_backbone(resnet, ckpt)
