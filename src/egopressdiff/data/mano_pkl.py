"""MANO model files (``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl``) read through a restricted unpickler.

A pickle can run any code while it is being read, so the user's MANO files are
never given to :func:`pickle.load`. :class:`RestrictedUnpickler` resolves only the
globals a MANO file needs and refuses every other one with a
:class:`~egopressdiff.errors.DataError` *before* anything is called:

* numpy array reconstruction (``numpy.core.multiarray._reconstruct`` and its
  ``numpy._core`` spelling, ``scalar``, ``_frombuffer``, ``numpy.ndarray``, ``numpy.dtype``);
* ``scipy.sparse`` ``csc_matrix`` / ``csr_matrix`` (read into stand-in objects and
  turned into dense arrays with numpy; no scipy code runs while unpickling);
* chumpy ``Ch`` objects (MANO's ``shapedirs`` & co.), read into a stand-in without
  importing chumpy; the array is the ``x`` of their state;
* ``copy_reg._reconstructor`` / ``builtins.object``, only to create those stand-ins, and
  ``_codecs.encode`` of a str to latin-1 (how pickle protocol 2 spells bytes).

:func:`load_mano_pkl` returns a dict of plain numpy arrays (``v_template``, ``f``,
``weights``, ``J_regressor``, ``shapedirs``, ``posedirs``, ``kintree_table`` and any
other array entry). The files are found like the UV files (``EGOPRESSDIFF_MANO_DIR``,
else ``EGOPRESSURE_MANO_PATH``).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from egopressdiff.errors import DataError

REQUIRED_KEYS = ("v_template", "f", "weights", "J_regressor", "shapedirs", "posedirs", "kintree_table")
MAX_PKL_BYTES = 512 * 1024 * 1024  # a MANO file is ~4 MB; refuse absurd inputs before reading them


def _numpy_globals() -> dict:
    allowed = {}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = _reconstruct_ndarray
        allowed[(mod, "scalar")] = _scalar
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(mod, "_frombuffer")] = _frombuffer
    allowed[("_codecs", "encode")] = _latin1_encode  # how protocol 2 spells bytes
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    return allowed


def _latin1_encode(text, encoding="utf-8", errors="strict"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise pickle.UnpicklingError("refusing _codecs.encode other than of a str to latin1")
    return text.encode("latin1")


def _reconstruct_ndarray(subtype, shape, dtype):
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"refusing to reconstruct an array of type {subtype!r}")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError("refusing a numpy scalar of object dtype")
    if isinstance(data, str):  # Python 2 pickles read with encoding="latin1"
        data = data.encode("latin1")
    if not isinstance(data, (bytes, bytearray)) or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError("malformed numpy scalar")
    return np.frombuffer(bytes(data), dtype=dtype)[0]


def _frombuffer(buf, dtype, shape, order):
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError("refusing a numpy buffer of object dtype")
    arr = np.frombuffer(bytes(buf), dtype=dtype)
    return arr.reshape(shape, order=order).copy()


class _Stub:
    """Stand-in for an admitted non-numpy class: stores the pickled state, runs nothing."""

    kind = "object"

    def __init__(self, *args, **kwargs):  # only reached through NEWOBJ / _reconstructor
        self.state = None

    def __setstate__(self, state):
        self.state = state


class _ChStub(_Stub):
    kind = "chumpy.Ch"


class _CscStub(_Stub):
    kind = "csc"


class _CsrStub(_Stub):
    kind = "csr"


def _reconstructor(cls, base, state):
    """``copy_reg._reconstructor`` restricted to our stand-ins (base ``object``)."""
    if not (isinstance(cls, type) and issubclass(cls, _Stub)) or base is not object or state is not None:
        raise pickle.UnpicklingError("refusing copy_reg._reconstructor of a class that is not admitted")
    return cls.__new__(cls)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a MANO model file needs (see module doc)."""

    _ALLOWED = None

    def __init__(self, file, path=None):
        super().__init__(file, encoding="latin1", fix_imports=False)
        self.path = path
        if RestrictedUnpickler._ALLOWED is None:
            RestrictedUnpickler._ALLOWED = _numpy_globals()

    def find_class(self, module, name):
        allowed = self._ALLOWED.get((module, name))
        if allowed is not None:
            return allowed
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return _reconstructor
        if module in ("__builtin__", "builtins") and name == "object":
            return object
        if module.split(".")[0] == "chumpy" and name == "Ch":
            return _ChStub
        if module.split(".")[0] == "scipy" and ".sparse" in module:
            if name == "csc_matrix":
                return _CscStub
            if name == "csr_matrix":
                return _CsrStub
        raise DataError(f"refusing to load {module}.{name} from a pickle (only numpy arrays, scipy sparse "
                        "matrices and chumpy arrays are admitted)", path=self.path)

    def persistent_load(self, pid):
        raise DataError("refusing a pickle with persistent ids", path=self.path)


def _state_dict(stub: _Stub, path) -> dict:
    st = stub.state
    if isinstance(st, tuple) and len(st) == 2 and isinstance(st[0], (dict, type(None))):
        st = {**(st[0] or {}), **(st[1] or {})}  # (dict state, slot state)
    if not isinstance(st, dict):
        raise DataError(f"malformed {stub.kind} object in pickle", path=path)
    return st


def _to_array(value, key: str, path):
    """A pickled value -> plain numpy array (None if it is not array-like, e.g. a string)."""
    if isinstance(value, _ChStub):
        st = _state_dict(value, path)
        if "x" not in st:
            raise DataError(f"chumpy object {key!r} has no 'x' in its state", path=path)
        return _to_array(st["x"], key, path)
    if isinstance(value, (_CscStub, _CsrStub)):
        st = _state_dict(value, path)
        shape = st.get("_shape", st.get("shape"))
        try:
            data, indices, indptr = (np.asarray(st[k]) for k in ("data", "indices", "indptr"))
            rows, cols = (int(s) for s in shape)
        except (KeyError, TypeError, ValueError):
            raise DataError(f"malformed sparse matrix {key!r} in pickle", path=path) from None
        outer, inner = (cols, rows) if isinstance(value, _CscStub) else (rows, cols)
        if (data.dtype.hasobject or indptr.shape != (outer + 1,) or len(indices) != len(data)
                or (len(indices) and (indices.min() < 0 or indices.max() >= inner))
                or indptr[0] != 0 or indptr[-1] != len(data) or np.any(np.diff(indptr) < 0)):
            raise DataError(f"malformed sparse matrix {key!r} in pickle", path=path)
        dense = np.zeros((outer, inner), dtype=data.dtype)
        major = np.repeat(np.arange(outer), np.diff(indptr))
        np.add.at(dense, (major, indices.astype(np.int64)), data)
        return dense.T.copy() if isinstance(value, _CscStub) else dense
    if isinstance(value, _Stub):
        return None
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise DataError(f"array {key!r} has object dtype", path=path)
        return value
    if isinstance(value, (np.generic, int, float)) and not isinstance(value, bool):
        return np.asarray(value)
    return None


def load_pickle_restricted(path) -> object:
    """Unpickle ``path`` with :class:`RestrictedUnpickler` (DataError on anything refused or malformed)."""
    path = Path(path)
    if not path.is_file():
        raise DataError("pickle file not found", path=path)
    if path.stat().st_size > MAX_PKL_BYTES:
        raise DataError(f"pickle file is larger than {MAX_PKL_BYTES >> 20} MB", path=path)
    data = path.read_bytes()
    try:
        return RestrictedUnpickler(io.BytesIO(data), path=path).load()
    except DataError:
        raise
    except Exception as exc:  # truncated/garbage pickles raise many types
        raise DataError(f"cannot read pickle ({type(exc).__name__}: {' '.join(str(exc).split())})",
                        path=path) from None


def load_mano_pkl(path) -> dict[str, np.ndarray]:
    """Arrays of a MANO model pickle, read without running any code from the file."""
    path = Path(path)
    obj = load_pickle_restricted(path)
    if not isinstance(obj, dict):
        raise DataError(f"a MANO file must hold a dict, found {type(obj).__name__}", path=path)
    out = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            continue
        arr = _to_array(value, key, path)
        if arr is not None:
            out[key] = arr
    missing = [k for k in REQUIRED_KEYS if k not in out]
    if missing:
        raise DataError(f"MANO file lacks {', '.join(missing)}", path=path)
    return out


def mano_pkl_path(side: str) -> Path:
    """``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` in the user's MANO folder (MissingAssetError if absent)."""
    from egopressdiff.data.mano_uv import mano_file

    return mano_file(side, "MANO_{SIDE}.pkl")


def load_mano_model(side: str) -> dict[str, np.ndarray]:
    """The MANO model arrays of one hand side, from the user's MANO folder."""
    return load_mano_pkl(mano_pkl_path(side))
