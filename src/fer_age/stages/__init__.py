"""The pipeline's commands: one thin module per dvc.yaml stage (``main(config, args)``), plus check,
pipeline, predict and check-remote. Stages import the library, never each other."""
