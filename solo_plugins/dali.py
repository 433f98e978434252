"""Lets solo-learn's DALI data modules run with ``dali.device: cpu`` on machines without CUDA.

solo-learn builds every DALI pipeline with ``device_id=<local rank>``; DALI then wants a CUDA
device even when every operator runs on the CPU. DALI's own rule is ``device_id=None`` for
CPU-only pipelines, so the fix is one argument at one call site: when a pipeline builder's
device is "cpu", build the pipeline with ``device_id=None``. Upstream, this is the line
``device_id=builder.device_id if builder.device == "gpu" else None`` in solo's
``dali_dataloader.py``; here it is applied to the builders' ``pipeline`` methods.
"""

import functools

_PATCHED = "_solo_plugins_cpu_device_id"


def _cpu_pipelines_without_device(pipeline):
    @functools.wraps(pipeline)
    def build(self, *args, **kwargs):
        if self.device == "cpu":
            kwargs["device_id"] = None
        return pipeline(self, *args, **kwargs)

    setattr(build, _PATCHED, True)
    return build


def enable_dali_on_cpu() -> bool:
    """Applies the fix to solo-learn's DALI pipeline builders. Idempotent; returns False
    (and does nothing) when DALI or solo-learn's DALI module is not installed."""
    try:
        from solo.data import dali_dataloader
    except ImportError:
        return False
    for builder in (dali_dataloader.PretrainPipelineBuilder, dali_dataloader.NormalPipelineBuilder):
        if not getattr(builder.pipeline, _PATCHED, False):
            builder.pipeline = _cpu_pipelines_without_device(builder.pipeline)
    return True
