"""Codec costs per value: dash-state's freeze, encode, seal and unseal+decode against pickle, at each
size of the run (what the retired ``backends.py`` measured)."""
from __future__ import annotations

import gc
import pickle
import statistics
import time
from collections.abc import Callable
from typing import Any

from .apps import SECRET_KEY
from .messages import short_error
from .sizes import Size


def dash_state_internals():
    """The internal API these sections use; a change there makes them 'unavailable', not a crash."""
    from dash_state.backends import create_backend
    from dash_state.config import build_config
    from dash_state.core.keys import Keys
    from dash_state.core.seal import Seal
    from dash_state.core.values import freeze

    return freeze, Seal(Keys((SECRET_KEY.encode(),))), create_backend, build_config


def timed_median_ms(fn: Callable[[], Any], repeats: int) -> float:
    """Median of ``repeats`` calls in ms, each after a ``gc.collect()``."""
    samples = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def measure_codecs(sizes: list[Size], quick: bool) -> dict:
    """Median ms of each codec step and the stored / pickled bytes, per size."""
    try:
        freeze, seal, _, _ = dash_state_internals()
    except Exception as exc:
        return {"status": f"unavailable: {short_error(exc)}"}
    out = {}
    for size in sizes:
        repeats = 3 if quick or (size.rows or 0) >= 500_000 else 7
        try:
            sealed = bytes(seal.dump("k" * 22, freeze(size.value)))
            pickled = pickle.dumps(size.value, protocol=pickle.HIGHEST_PROTOCOL)
            out[size.key] = {
                "label": size.label, "stored_bytes": len(sealed), "pickle_bytes": len(pickled),
                "freeze_ms": timed_median_ms(lambda: freeze(size.value), repeats),
                "encode_ms": timed_median_ms(lambda: freeze(size.value).to_bytes(), repeats),
                "seal_ms": timed_median_ms(lambda: seal.dump("k" * 22, freeze(size.value)), repeats),
                "unseal_decode_ms": timed_median_ms(lambda: seal.load("k" * 22, sealed).thaw(), repeats),
                "pickle_dumps_ms": timed_median_ms(lambda: pickle.dumps(size.value, protocol=pickle.HIGHEST_PROTOCOL),
                                                   repeats),
                "pickle_loads_ms": timed_median_ms(lambda: pickle.loads(pickled), repeats),
            }
        except Exception as exc:
            out[size.key] = {"label": size.label, "status": f"failed: {short_error(exc)}"}
    return out
