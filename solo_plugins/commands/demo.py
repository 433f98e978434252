"""The embedded default job: the fair comparison (InfoNCE, DCL, DCLW, DHEL, KCL on one network
and projector) on scikit-learn's digits, offline on CPU, at batch sizes 32 and 128, with the
reference rows and three probes; prints the table and writes the plots.

    solo-plugins-demo                      # writes datasets/digits and runs/digits
    solo-plugins-demo out_dir=runs/demo2   # any sweep override (configs/sweep/digits.yaml)
"""

import os
import sys
from typing import List, Optional

from solo_plugins.commands._hydra import compose
from solo_plugins.data.export import export_digits
from solo_plugins.shipped_configs import configs_dir


def demo(overrides: Optional[List[str]] = None) -> str:
    from solo_plugins.commands.sweep import sweep

    cfg = compose(os.path.join(configs_dir(), "sweep"), "digits.yaml", list(overrides or []))
    print(f"exporting scikit-learn digits to {export_digits(cfg.data_root)}", flush=True)
    return sweep(cfg)


def main() -> None:
    demo(sys.argv[1:])


if __name__ == "__main__":
    main()
