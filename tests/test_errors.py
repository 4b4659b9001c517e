"""User-facing errors."""

import pickle

from stylediscover.errors import InputError


def test_input_errors_survive_pickling():
    """Ray ships a trial's exception to the driver by pickling it."""
    error = pickle.loads(pickle.dumps(InputError("g.safetensors", "corrupt", "generator")))
    assert (error.source, error.problem, error.field, str(error)) == (
        "g.safetensors", "corrupt", "generator", "g.safetensors: generator: corrupt")
