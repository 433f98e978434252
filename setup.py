import os
import re
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

VERSION = re.search(r'__version__ = "([^"]+)"', open("solo_plugins/_version.py").read()).group(1)

# What the package imports at run time. The tested versions are pinned in constraints.txt;
# solo-learn itself is not on PyPI in a usable version (README.md: it is installed from
# GitHub at 9187ea3, and brings lightning, torchmetrics < 0.12, wandb, timm, einops).
INSTALL_REQUIRES = [
    "torch>=2.1",
    "torchvision>=0.16",
    "lightning>=2.1.2",
    "omegaconf>=2.3,<2.4",
    "hydra-core>=1.3.2,<1.4",
    "scipy>=1.11",
    "scikit-learn>=1.3",
    "threadpoolctl>=3.1",
    "matplotlib>=3.8",
    "numpy>=1.24",
    "pillow>=9",
]


class build_py_with_configs(build_py):
    """Ships the repository's top-level configs/ inside the package as solo_plugins/configs,
    so that an installed wheel has every YAML the commands name."""

    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "solo_plugins", "configs")
        if os.path.isdir("configs"):
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree("configs", target, ignore=shutil.ignore_patterns("__pycache__"))


setup(
    name="solo-plugins",
    version=VERSION,
    description="DHEL and KCL contrastive losses (Koromilas et al., ICML 2024) for solo-learn",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    packages=find_packages(include=["solo_plugins", "solo_plugins.*"]),
    python_requires=">=3.9",
    install_requires=INSTALL_REQUIRES,
    extras_require={
        "test": ["pytest>=7.4", "black==23.12.0", "isort==5.13.2", "flake8>=7"],  # black/isort/flake8: the upstream series
        "dali": ["nvidia-dali-cuda120"],
        "slurm": ["submitit>=1.5.4", "hydra-submitit-launcher>=1.2.0"],
    },
    cmdclass={"build_py": build_py_with_configs},
    entry_points={
        "console_scripts": [
            "solo-plugins=solo_plugins.cli:main",
            # aliases of the subcommands (solo-plugins <subcommand>), kept for existing scripts
            "solo-plugins-pretrain=solo_plugins.commands.pretrain:main",
            "solo-plugins-linear=solo_plugins.commands.linear:main",
            "solo-plugins-knn=solo_plugins.commands.knn:main",
            "solo-plugins-metrics=solo_plugins.commands.metrics:main",
            "solo-plugins-sweep=solo_plugins.commands.sweep:main",
            "solo-plugins-identifiability=solo_plugins.commands.identifiability:main",
            "solo-plugins-demo=solo_plugins.commands.demo:main",
            "solo-plugins-export=solo_plugins.data.export:main",
            "solo-plugins-run=solo_plugins.commands.run_solo_script:main",
        ]
    },
)
