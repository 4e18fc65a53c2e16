"""fer-age: do facial emotion recognition models generalise across age groups?

The pipeline, one stage module each (``fer-age <stage>``): ``sample`` → ``crop`` → ``split`` →
``train`` / ``pool`` → ``evaluate`` → ``explain``. Stages share only ``config`` (typed params),
``contracts`` (paths, file names, records) and the library's subpackages. ``analyze`` finds the faces in a
photo and scores them with a trained model, from Python.
"""


def __getattr__(name: str):
    """``fer_age.analyze`` (``fer_age.modeling.prediction.analyze``), imported on first use: the stages never
    load it, so it is not among their DVC deps."""
    if name == "analyze":
        from importlib import import_module

        return import_module("fer_age.modeling.prediction").analyze
    raise AttributeError(f"module 'fer_age' has no attribute '{name}'")
