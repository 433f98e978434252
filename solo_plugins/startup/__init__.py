"""Start-up hook used by solo-plugins-run (see sitecustomize.py); not imported by the package."""
