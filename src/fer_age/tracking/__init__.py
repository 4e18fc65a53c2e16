"""Tracking: MLflow runs, registered models and the store."""
