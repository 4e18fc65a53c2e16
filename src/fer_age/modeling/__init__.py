"""Models: the registry's networks, the input pipeline, fitting, inference, Grad-CAM and the MLflow pyfunc."""
