# Hydra configs, shipped as the package dd_runner.conf
