import os
import re
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

VERSION = re.search(r'__version__ = "([^"]+)"', open("solo_plugins/_version.py").read()).group(1)

# The core (losses, metrics) needs torch alone; the rest comes with extras. The tested
# versions are pinned in constraints.txt. solo-learn itself is not on PyPI in a usable version
# and PyPI refuses a URL dependency: scripts/install.sh installs it from GitHub at 9187ea3; the
# [solo] extra brings its own dependencies.
INSTALL_REQUIRES = ["torch>=2.1"]

SOLO = [
    "torchvision>=0.16",
    "lightning>=2.1.2",
    "torchmetrics>=0.11.4,<0.12",  # 1.x breaks solo-learn's kNN
    "omegaconf>=2.3,<2.4",
    "hydra-core>=1.3.2,<1.4",
    "timm>=0.9",
    "einops>=0.6",
    "wandb>=0.15",
    "tqdm>=4.60",
    "scipy>=1.11",
    "scikit-learn>=1.3",
    "threadpoolctl>=3.1",
    "numpy>=1.24",
    "pillow>=9",
]
STUDIES = [
    "omegaconf>=2.3,<2.4",
    "hydra-core>=1.3.2,<1.4",
    "scipy>=1.11",
    "scikit-learn>=1.3",
    "threadpoolctl>=3.1",
    "matplotlib>=3.8",
    "numpy>=1.24",
    "pillow>=9",
]
SLURM = ["submitit>=1.5.4", "hydra-submitit-launcher>=1.2.0"]
DOCS = ["sphinx>=8", "myst-parser>=4", "furo>=2024.8.6"]
TEST = ["pytest>=7.4", "pytest-cov>=5", "pytest-xdist>=3.5", "black==23.12.0", "isort==5.13.2", "flake8>=7"]  # black/isort/flake8: the upstream series

#: Installed into site-packages beside the package (non-editable installs): every Python of the
#: environment runs this line at start-up, so that solo-learn's own scripts find `method: dhel`
#: in every rank (solo_plugins/autoregister.py). It imports nothing heavy, and nothing at all
#: when the package is gone.
PTH_LINE = "import importlib.util as _u; _u.find_spec('solo_plugins') and __import__('solo_plugins')\n"


class build_py_with_configs(build_py):
    """Ships the repository's top-level configs/ inside the package as solo_plugins/configs,
    so that an installed wheel has every YAML the commands name, and solo_plugins.pth beside
    the package (see PTH_LINE)."""

    def run(self):
        super().run()
        with open(os.path.join(self.build_lib, "solo_plugins.pth"), "w") as f:
            f.write(PTH_LINE)
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
        "solo": SOLO,
        "studies": STUDIES,
        "slurm": SLURM,
        "dali": ["nvidia-dali-cuda120"],
        "docs": DOCS,
        "test": TEST + SOLO + STUDIES + SLURM,
        "all": SOLO + STUDIES + SLURM + DOCS + TEST,
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
