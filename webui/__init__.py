"""TuneForge's web UI (Gradio): a tab per task, a runner owning the training subprocesses.

Nothing heavy is imported here or at any module's top level: the app must start in seconds.
"""
