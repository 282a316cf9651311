# cython: language_level=3, boundscheck=False, wraparound=False
"""Compact reading of DeepLabCut tracklet pickles, compiled.

A tracklet pickle holds, per tracklet, a dict ``"frameNNN" -> ndarray (n_bodyparts, 4)``:
tens of thousands of tiny arrays.  Building each one through NumPy's pickle
reconstructors costs microseconds; the stitcher only needs one ``(n_frames, n_bodyparts,
c)`` block per tracklet.  While unpickling (with mapose's restricted unpickler, which still
decides which globals may be resolved), NumPy's two array reconstructors are replaced by
the placeholders below, which only *keep* their arguments.  :func:`compact_frames` then
copies a whole tracklet's frames into one array in a single pass; :func:`materialize`
turns a placeholder into the array NumPy would have built, for every other use.
"""
import numpy as np
cimport numpy as cnp
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.unicode cimport PyUnicode_GET_LENGTH, PyUnicode_READ_CHAR
from libc.string cimport memcpy
from libc.stdint cimport int64_t

cnp.import_array()

cdef object _F8 = np.dtype(np.float64)
cdef object _frombuffer_real = None
cdef object _reconstruct_real = None


def set_reconstructors(frombuffer, reconstruct):
    """Register NumPy's real ``_frombuffer`` / ``_reconstruct`` (used by :func:`materialize`)."""
    global _frombuffer_real, _reconstruct_real
    _frombuffer_real = frombuffer
    _reconstruct_real = reconstruct


@cython.freelist(256)
cdef class FromBuffer:
    """Arguments of ``numpy._core.numeric._frombuffer(buf, dtype, shape, order)`` (protocol 5)."""
    cdef readonly object buf, dtype, shape, order

    def __cinit__(self, buf, dtype, shape, order):
        self.buf = buf
        self.dtype = dtype
        self.shape = shape
        self.order = order


@cython.freelist(256)
cdef class Reconstructed:
    """``numpy._core.multiarray._reconstruct(cls, shape, typecode)`` and its BUILD state
    (``(version, shape, dtype, is_fortran, rawdata)``; protocols 2-4)."""
    cdef readonly object cls, args
    cdef public object state

    def __cinit__(self, cls, *args):
        self.cls = cls
        self.args = args
        self.state = None

    def __setstate__(self, state):
        self.state = state


cpdef object materialize(object obj):
    """The ndarray NumPy's unpickling would have produced for a placeholder; other
    objects are returned as they are (containers are not descended)."""
    cdef FromBuffer fb
    cdef Reconstructed rc
    if type(obj) is FromBuffer:
        fb = <FromBuffer>obj
        return _frombuffer_real(fb.buf, fb.dtype, fb.shape, fb.order)
    if type(obj) is Reconstructed:
        rc = <Reconstructed>obj
        arr = _reconstruct_real(rc.cls, *rc.args)
        if rc.state is not None:
            arr.__setstate__(rc.state)
        return arr
    return obj


cdef inline bint _same_shape(object a, object b):
    # shapes are freshly built tuples of small ints in every frame
    if a is b:
        return True
    if type(a) is not tuple or type(b) is not tuple:
        return False
    cdef Py_ssize_t k, n = len(<tuple>a)
    if n != len(<tuple>b):
        return False
    for k in range(n):
        if (<tuple>a)[k] != (<tuple>b)[k]:
            return False
    return True


cdef int _frame_number(object key, int64_t* out) except -1:
    """``"frame012"`` -> 12, int keys as they are; 0 on success, 1 when not recognised."""
    cdef Py_ssize_t k, n
    cdef long ch
    cdef int64_t v = 0
    if type(key) is str:
        n = PyUnicode_GET_LENGTH(key)
        if n <= 5 or n > 23:
            return 1
        if not (PyUnicode_READ_CHAR(key, 0) == 102 and PyUnicode_READ_CHAR(key, 1) == 114
                and PyUnicode_READ_CHAR(key, 2) == 97 and PyUnicode_READ_CHAR(key, 3) == 109
                and PyUnicode_READ_CHAR(key, 4) == 101):  # "frame"
            return 1
        for k in range(5, n):
            ch = <long>PyUnicode_READ_CHAR(key, k)
            if ch < 48 or ch > 57:  # not an ASCII digit
                return 1
            v = v * 10 + <int64_t>(ch - 48)
        out[0] = v
        return 0
    if type(key) is int:
        try:
            out[0] = <int64_t>key
        except OverflowError:
            return 1
        return 0
    return 1


cdef const char* _raw(object buf, Py_ssize_t* size):
    if type(buf) is bytearray:
        size[0] = PyByteArray_GET_SIZE(buf)
        return PyByteArray_AS_STRING(buf)
    if type(buf) is bytes:
        size[0] = PyBytes_GET_SIZE(buf)
        return PyBytes_AS_STRING(buf)
    return NULL


def compact_frames(dict frames):
    """One tracklet's ``{frame_key: array}`` as ``(inds, data)`` in a single copy.

    Parameters
    ----------
    frames : dict
        Keys ``"frameNNN"`` or int; values :class:`FromBuffer` / :class:`Reconstructed`
        placeholders of C-ordered float64 arrays, all of one shape.

    Returns
    -------
    (inds, data) or None
        ``inds`` int64 (n,), ``data`` float64 (n, *shape) in dict order; None when any
        key or value is of another kind (the caller then materialises the dict).
    """
    cdef Py_ssize_t n = len(frames), i = 0, size, nbytes = 0
    cdef int64_t* ip
    cdef const char* src
    cdef char* dst
    cdef object first_shape = None, seen_dtype = None, seen_order = None, shape, dtype, raw
    cdef FromBuffer fb
    cdef Reconstructed rc
    cdef list srcs = []
    if n == 0:
        return None
    inds = np.empty(n, dtype=np.int64)
    ip = <int64_t*>cnp.PyArray_DATA(inds)
    for key, val in frames.items():
        if i >= n:  # the dict grew under us (cannot happen without threads)
            return None
        if _frame_number(key, ip + i):
            return None
        if type(val) is FromBuffer:
            fb = <FromBuffer>val
            shape, dtype, raw = fb.shape, fb.dtype, fb.buf
            if fb.order is not seen_order:
                if fb.order != "C":
                    return None
                seen_order = fb.order
        elif type(val) is Reconstructed:
            rc = <Reconstructed>val
            st = rc.state
            if rc.cls is not np.ndarray or type(st) is not tuple or len(<tuple>st) != 5:
                return None
            if (<tuple>st)[3]:  # Fortran order
                return None
            shape, dtype, raw = (<tuple>st)[1], (<tuple>st)[2], (<tuple>st)[4]
        else:
            return None
        if dtype is not seen_dtype:
            if not isinstance(dtype, np.dtype) or dtype != _F8:
                return None
            seen_dtype = dtype
        if first_shape is None:
            if type(shape) is not tuple or not 1 <= len(<tuple>shape) <= 2:
                return None
            nbytes = 8
            for s in <tuple>shape:
                if type(s) is not int or s < 0:
                    return None
                nbytes *= <Py_ssize_t>s
            first_shape = shape
        elif not _same_shape(shape, first_shape):
            return None
        if _raw(raw, &size) == NULL or size != nbytes:
            return None
        srcs.append(raw)
        i += 1
    data = np.empty((n,) + first_shape, dtype=np.float64)
    dst = <char*>cnp.PyArray_DATA(data)
    for i in range(n):
        src = _raw(srcs[i], &size)
        memcpy(dst + i * nbytes, src, nbytes)
    return inds, data
