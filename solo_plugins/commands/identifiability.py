"""The latent-recovery study on the hypersphere (docs/ground_truth.md): trains every run of
the config's grid, resumable, then writes the report and the plots.

    solo-plugins-identifiability --config-name identifiability.yaml [out_dir=...] [overrides]
    solo-plugins-identifiability --config-name identifiability_converged.yaml [overrides]
    solo-plugins-identifiability --config-name identifiability_selection.yaml [overrides]
    solo-plugins-identifiability --config-name identifiability_selected.yaml [overrides]
    solo-plugins-identifiability --config-name finite_batch_optimum.yaml [overrides]
"""

from omegaconf import DictConfig, OmegaConf

from solo_plugins.commands._hydra import run_hydra


def identifiability(cfg: DictConfig) -> str:
    settings = OmegaConf.to_container(cfg, resolve=True)
    settings.pop("hydra", None)
    progress = lambda line: print(line, flush=True)  # noqa: E731
    if settings.get("study") == "optimum":
        from solo_plugins.identifiability.optimum_study import run_optimum_study, write_optimum_report

        if not cfg.get("report_only", False):
            run_optimum_study(settings, progress=progress)
        text = write_optimum_report(settings["out_dir"], settings)
        print(f"wrote {settings['out_dir']}/results.csv, results.md and min_distance.png")
        return text
    if settings.get("study") == "converged":
        from solo_plugins.identifiability.converged_report import write_converged_report
        from solo_plugins.identifiability.converged_study import ConvergedStudy

        study, write = ConvergedStudy(settings, progress=progress), write_converged_report
    else:
        from solo_plugins.identifiability.report import write_report
        from solo_plugins.identifiability.study import Study

        study, write = Study(settings, progress=progress), write_report
    if not cfg.get("report_only", False):
        study.run()
    text = write(settings["out_dir"], settings)
    print(f"wrote {settings['out_dir']}/results.csv, results.md and the plots")
    return text


def main() -> None:
    run_hydra(identifiability, configs="sweep")


if __name__ == "__main__":
    main()
