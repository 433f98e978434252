"""The converged stage's report (filled in below as the rows land)."""

import os
from typing import Dict

from solo_plugins.analysis.identifiability_converged_study import converged_table


def write_converged_report(out_dir: str, cfg: Dict) -> str:
    rows = converged_table(out_dir).read()
    text = f"# Converged stage\n\n{len(rows)} rows.\n"
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(text)
    return text
