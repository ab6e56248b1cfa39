"""TuneForge core: the trainer library. Nothing under core/ imports gradio."""
