"""Process set-up shared by every command: TensorFlow imported without its start-up noise, GPU memory
grown as used."""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile

# what TensorFlow's C++ side writes to stderr while it loads, on every machine without a GPU
NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\)"
    r"|[IW]\d{4} [\d:. ]+\s+\d+ (port|cudart_stub|cpu_feature_guard|cuda_\w+|gpu_device)\.cc:\d+\]"
    r"|E\d{4} [\d:. ]+\s+\d+ cuda_\w+\.cc:\d+\] failed call to cuInit"
    r"|To enable the following instructions: .* rebuild TensorFlow)"
)


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ and absl logs below errors, and let GPU memory grow as used (set before
    TensorFlow is imported; a value already in the environment wins).

    Python warnings and the project's own messages still show. Growing memory instead of TensorFlow's
    default, all of each GPU's memory at start, lets several processes share one GPU (``dvc queue start -j N``).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")


def import_tensorflow() -> None:
    """Import TensorFlow with stderr caught at the file-descriptor level, and pass on all but its known
    start-up noise (the lines it writes before its own log settings apply)."""
    if "tensorflow" in sys.modules:
        return
    quiet_tensorflow()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as caught:
        os.dup2(caught.fileno(), 2)
        try:
            import absl.logging
            import tensorflow  # noqa: F401

            absl.logging.set_verbosity(absl.logging.ERROR)  # e.g. Keras' "saving as HDF5 is legacy" warning
            # evaluate and explain predict with one model after another: each traces its own function, which
            # TensorFlow reports as "excessive retracing" from the sixth model on
            logging.getLogger("tensorflow").addFilter(
                lambda record: "triggered tf.function retracing" not in record.getMessage()
            )
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().decode(errors="replace").splitlines() if not NOISE.match(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr)
