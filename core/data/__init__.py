"""The dataset library: registry (dataset_info.json), file loaders, formats, chat templates,
per-stage preprocessing and collators.

Import the submodules directly (`from core.data.registry import load_registry`); this package
imports nothing so that the web UI can read the registry without loading torch or datasets.
"""
