"""Faces: detection and cropping, the raw dataset formats, the synthetic demo faces."""
