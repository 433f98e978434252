import re

from setuptools import find_packages, setup

VERSION = re.search(r'__version__ = "([^"]+)"', open("solo_plugins/_version.py").read()).group(1)

# Versions tested together on CPU (torch 2.14.1 / torchvision 0.29.1). solo-learn itself is
# not on PyPI in a usable version: see README.md (it is installed from GitHub at 9187ea3).
INSTALL_REQUIRES = [
    "torch>=2.1,<=2.14.1",
    "torchvision>=0.16,<=0.29.1",
    "lightning>=2.1.2,<=2.6.6",
    "torchmetrics>=0.11.4,<0.12",
    "omegaconf>=2.3,<2.4",
    "hydra-core>=1.3.2,<1.4",
    "wandb>=0.16",
    "scipy>=1.11",
    "scikit-learn>=1.3",
    "matplotlib>=3.8",
    "numpy>=1.24",
]

setup(
    name="solo-plugins",
    version=VERSION,
    description="DHEL and KCL contrastive losses (Koromilas et al., ICML 2024) for solo-learn",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    packages=find_packages(include=["solo_plugins", "solo_plugins.*"]),
    include_package_data=True,
    python_requires=">=3.9",
    install_requires=INSTALL_REQUIRES,
    extras_require={
        "test": ["pytest>=7.4"],
        "dali": ["nvidia-dali-cuda120"],
    },
    entry_points={
        "console_scripts": [
            "solo-plugins-pretrain=solo_plugins.commands.pretrain:main",
            "solo-plugins-linear=solo_plugins.commands.linear:main",
            "solo-plugins-knn=solo_plugins.commands.knn:main",
            "solo-plugins-metrics=solo_plugins.commands.metrics:main",
            "solo-plugins-sweep=solo_plugins.commands.sweep:main",
            "solo-plugins-demo=solo_plugins.commands.demo:main",
            "solo-plugins-export=solo_plugins.data.export:main",
            "solo-plugins-run=solo_plugins.commands.run_solo_script:main",
        ]
    },
)
