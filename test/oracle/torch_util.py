"""JSON-in / JSON-out helpers for PyTorch oracle scripts run by test/oracle/run-python.ts.

A tensor travels as {"dtype": "float32"|"float64"|"int64"|"int32", "shape": [...], "b64": "..."}
with the raw little-endian bytes base64-encoded. read_input() turns every such object into a torch
tensor; write_output() turns tensors (and numpy arrays) back into that form.
"""
import base64
import json
import sys

import numpy as np
import torch

_NP = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "int32": np.int32}


def _decode(obj):
    if isinstance(obj, dict):
        if set(obj.keys()) == {"dtype", "shape", "b64"}:
            dt = np.dtype(_NP[obj["dtype"]]).newbyteorder("<")
            arr = np.frombuffer(base64.b64decode(obj["b64"]), dtype=dt).astype(_NP[obj["dtype"]])
            return torch.from_numpy(arr.reshape(obj["shape"]).copy())
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj


def _encode(obj):
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        name = str(obj.dtype)
        if name not in _NP:
            raise TypeError(f"cannot send a {name} array back")
        data = np.ascontiguousarray(obj.astype(np.dtype(_NP[name]).newbyteorder("<")))
        return {"dtype": name, "shape": list(obj.shape), "b64": base64.b64encode(data.tobytes()).decode("ascii")}
    if isinstance(obj, dict):
        return {k: _encode(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_encode(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj


def read_input():
    return _decode(json.load(sys.stdin))


def write_output(obj):
    json.dump(_encode(obj), sys.stdout)
    sys.stdout.flush()


def blas_info():
    """Which BLAS torch was built for and which library it actually runs on: the build's BLAS_INFO /
    LAPACK_INFO, the BLAS libraries mapped into this process, and OpenBLAS's core type if loaded."""
    import ctypes
    import os
    import re

    show = torch.__config__.show()
    build = {k: v for k, v in re.findall(r"\b(BLAS_INFO|LAPACK_INFO|USE_MKLDNN|USE_OPENMP)=([^,\s]+)", show)}
    libs = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if "/" in line else ""
                if re.search(r"blas|lapack|mkl", os.path.basename(path), re.I):
                    real = os.path.realpath(path)
                    if real not in libs:
                        libs.append(real)
    except OSError:
        pass
    openblas = None
    for lib in libs:
        if "openblas" in os.path.basename(lib):
            try:
                h = ctypes.CDLL(lib)
                h.openblas_get_corename.restype = ctypes.c_char_p
                h.openblas_get_config.restype = ctypes.c_char_p
                openblas = {"core": h.openblas_get_corename().decode(), "config": h.openblas_get_config().decode(), "threads": h.openblas_get_num_threads()}
            except (OSError, AttributeError):
                pass
            break
    return {"torch": torch.__version__, "build": build, "libraries": libs, "openblas": openblas, "threads": torch.get_num_threads()}
