"""The latent-recovery study on the hypersphere (docs/ground_truth.md): trains every run of
the config's grid, resumable, then writes results.md, curves.csv and the plots.

    solo-plugins-identifiability --config-name identifiability.yaml [out_dir=...] [overrides]
"""

from omegaconf import DictConfig, OmegaConf

from solo_plugins.commands._hydra import run_hydra


def identifiability(cfg: DictConfig) -> str:
    from solo_plugins.analysis.identifiability_report import write_report
    from solo_plugins.analysis.identifiability_study import Study

    settings = OmegaConf.to_container(cfg, resolve=True)
    settings.pop("hydra", None)
    study = Study(settings, progress=lambda line: print(line, flush=True))
    if not cfg.get("report_only", False):
        study.run()
    text = write_report(settings["out_dir"], settings)
    print(f"wrote {settings['out_dir']}/results.csv, results.md, curves.csv and PNG plots")
    return text


def main() -> None:
    run_hydra(identifiability, configs="sweep")


if __name__ == "__main__":
    main()
