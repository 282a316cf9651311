# cython: language_level=3, boundscheck=False, wraparound=False
"""Compact reading of DeepLabCut tracklet pickles, compiled.

A tracklet pickle holds, per tracklet, a dict ``"frameNNN" -> ndarray (n_bodyparts, 4)``:
tens of thousands of tiny arrays.  Building each one through NumPy's pickle
reconstructors costs microseconds; the stitcher only needs one ``(n_frames, n_bodyparts,
c)`` block per tracklet.  Two readers live here:

* :func:`scan_tracklets` (the default, section "Byte-level reader" below) parses the
  file's opcodes itself and copies each tracklet's frames straight into one block;
  only the header's opcodes go through the restricted unpickler.
* The deferred-array path, for files outside that reader's grammar: while unpickling
  (with mapose's restricted unpickler, which still decides which globals may be
  resolved), NumPy's two array reconstructors are replaced by the placeholders below,
  which only *keep* their arguments.  :func:`compact_frames` then copies a whole
  tracklet's frames into one array in a single pass; :func:`materialize` turns a
  placeholder into the array NumPy would have built, for every other use.
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
cdef tuple _EMPTY_ARGS = ((0,), b"b")
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
                if type(fb.order) is not str or fb.order != "C":
                    return None
                seen_order = fb.order
        elif type(val) is Reconstructed:
            rc = <Reconstructed>val
            st = rc.state
            if rc.cls is not np.ndarray or type(st) is not tuple or len(<tuple>st) != 5:
                return None
            # exactly NumPy's own pickle (anything else is left to NumPy, and its errors)
            if rc.args != _EMPTY_ARGS or type((<tuple>st)[0]) is not int or (<tuple>st)[0] != 1:
                return None
            if (<tuple>st)[3] is not False:  # Fortran order (or not a bool)
                return None
            shape, dtype, raw = (<tuple>st)[1], (<tuple>st)[2], (<tuple>st)[4]
        else:
            return None
        if dtype is not seen_dtype:
            # flags too: a crafted dtype state can compare equal and still break NumPy
            if not isinstance(dtype, np.dtype) or dtype != _F8 or dtype.flags != _F8.flags:
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


# ---------------------------------------------------------------------------------------
# Byte-level reader.
#
# ``scan_tracklets`` runs the pickle opcodes of protocols 2-5 *symbolically*: nothing from
# the file is resolved or executed.  It recognises exactly the grammar DLC's writers use
# for tracklets (dicts of ``"frameNNN"``/int -> float64 arrays built by NumPy's
# ``_reconstruct`` + BUILD or protocol 5's ``_frombuffer``, ids as ``numpy.int64``
# scalars); every other value is "opaque".  The top-level values that are opaque (the
# header index) are handed back as byte spans for the restricted unpickler, with the memo
# entries they borrow from earlier in the file.  Anything else the reader does not
# recognise -- an opaque value outside a top-level value, an unknown opcode, a truncated
# file, a crafted length or memo index -- makes it answer None, and the caller falls back
# to the general reader (whose allow-list decides and whose errors the user sees).
# Every read of the buffer is bounds-checked.
# ---------------------------------------------------------------------------------------
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcmp, memset
from libc.stdint cimport uint64_t, int32_t, uint32_t, uint16_t, uint8_t

DEF V_UNSET = 0
DEF V_NONE = 1
DEF V_BOOL = 2
DEF V_INT = 3
DEF V_STR = 4
DEF V_BYTES = 5
DEF V_BYTEARRAY = 6
DEF V_TUPLE = 7
DEF V_GLOBAL = 8
DEF V_OBJ = 9          # a = index into the object table (dtype, array, dict)
DEF V_NPINT = 10       # numpy.int64 scalar, a = value
DEF V_OPAQUE = 11

DEF G_RECON = 1
DEF G_NDARRAY = 2
DEF G_DTYPE = 3
DEF G_FROMBUFFER = 4
DEF G_SCALAR = 5

DEF O_DTYPE = 1
DEF O_ARRAY = 2
DEF O_DICT = 3

DEF DT_PENDING_F8 = 1
DEF DT_PENDING_I8 = 2
DEF DT_F8 = 3
DEF DT_I8 = 4
DEF DT_OTHER = 5

DEF A_PENDING = 1
DEF A_BUILT = 2

DEF MAX_MEMO = 1 << 26


cdef struct Val:
    int32_t kind
    int32_t taint
    int64_t a
    int64_t b
    Py_ssize_t pos      # first byte of the opcodes that built this value
    Py_ssize_t mlen     # memo size when that first opcode ran (MEMOIZE numbering)


cdef struct Obj:
    int32_t kind
    int32_t state
    int64_t raw_off, raw_len, ndim, d0, d1
    int64_t dtype      # object index of the array's dtype
    int64_t fortran
    int64_t head, tail, count   # dict items (linked through Item.next)


cdef struct Item:
    Val key
    Val value
    int64_t next


cdef struct MemoEnt:
    Val v
    Py_ssize_t put_pos
    Py_ssize_t first_pos


cdef struct Mark:
    Py_ssize_t n
    Py_ssize_t pos
    Py_ssize_t mlen


cdef struct Vec:
    char* p
    Py_ssize_t n, cap, size


cdef int _vec_reserve(Vec* v, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t cap
    cdef char* q
    if n <= v.cap:
        return 0
    cap = v.cap * 2 if v.cap else 64
    while cap < n:
        cap *= 2
    q = <char*>realloc(v.p, cap * v.size)
    if q == NULL:
        return -1
    v.p = q
    v.cap = cap
    return 0


cdef inline void* _vec_push(Vec* v) noexcept nogil:
    # inlined: one compare on the hot path (every opcode pushes something)
    if v.n >= v.cap and _vec_reserve(v, v.n + 1):
        return NULL
    v.n += 1
    return v.p + (v.n - 1) * v.size


cdef class _Scan:
    """State of one symbolic run (C arrays, freed with the object)."""
    cdef Vec stack, marks, memo, pool, objs, items, frames
    cdef Val top
    cdef Py_ssize_t memo_len
    cdef bint memoize_ops, explicit_puts
    cdef int proto
    cdef const unsigned char* buf
    cdef Py_ssize_t size

    def __cinit__(self):
        self.stack.size = sizeof(Val)
        self.marks.size = sizeof(Mark)
        self.memo.size = sizeof(MemoEnt)
        self.pool.size = sizeof(Val)
        self.objs.size = sizeof(Obj)
        self.items.size = sizeof(Item)
        self.frames.size = sizeof(Py_ssize_t)

    cdef void reset(self):
        self.stack.n = 0
        self.marks.n = 0
        self.memo.n = 0
        self.pool.n = 0
        self.objs.n = 0
        self.items.n = 0
        self.frames.n = 0
        self.memo_len = 0
        self.memoize_ops = False
        self.explicit_puts = False
        self.proto = 0
        self.top.kind = V_UNSET

    def __dealloc__(self):
        free(self.stack.p); free(self.marks.p); free(self.memo.p); free(self.pool.p)
        free(self.objs.p); free(self.items.p); free(self.frames.p)


cdef inline Val* _sv(_Scan s, Py_ssize_t i) noexcept nogil:
    return (<Val*>s.stack.p) + i


cdef inline Mark* _mk(_Scan s, Py_ssize_t i) noexcept nogil:
    return (<Mark*>s.marks.p) + i


cdef inline Obj* _ob(_Scan s, int64_t i) noexcept nogil:
    return (<Obj*>s.objs.p) + i


cdef inline Val* _pv(_Scan s, int64_t i) noexcept nogil:
    return (<Val*>s.pool.p) + i


cdef inline int _push(_Scan s, int32_t kind, int64_t a, int64_t b, Py_ssize_t pos, int32_t taint) noexcept nogil:
    cdef Val* v = <Val*>_vec_push(&s.stack)
    if v == NULL:
        return -1
    v.kind = kind
    v.taint = taint
    v.a = a
    v.b = b
    v.pos = pos
    v.mlen = s.memo_len
    return 0


cdef int64_t _new_obj(_Scan s, int32_t kind, int32_t state) noexcept nogil:
    cdef Obj* o = <Obj*>_vec_push(&s.objs)
    if o == NULL:
        return -1
    memset(o, 0, sizeof(Obj))
    o.kind = kind
    o.state = state
    o.head = -1
    o.tail = -1
    return s.objs.n - 1


cdef inline bint _str_is(_Scan s, Val* v, const char* lit, Py_ssize_t n) noexcept nogil:
    return v.kind == V_STR and v.b == n and memcmp(s.buf + v.a, lit, n) == 0


cdef inline bint _int_is(Val* v, int64_t x) noexcept nogil:
    return v.kind == V_INT and v.a == x


cdef int _global_id(const unsigned char* mod, Py_ssize_t ml, const unsigned char* name,
                    Py_ssize_t nl) noexcept nogil:
    cdef bint multiarray = ((ml == 21 and memcmp(mod, b"numpy.core.multiarray", 21) == 0)
                            or (ml == 22 and memcmp(mod, b"numpy._core.multiarray", 22) == 0))
    cdef bint numeric = ((ml == 18 and memcmp(mod, b"numpy.core.numeric", 18) == 0)
                         or (ml == 19 and memcmp(mod, b"numpy._core.numeric", 19) == 0))
    if multiarray and nl == 12 and memcmp(name, b"_reconstruct", 12) == 0:
        return G_RECON
    if multiarray and nl == 6 and memcmp(name, b"scalar", 6) == 0:
        return G_SCALAR
    if numeric and nl == 11 and memcmp(name, b"_frombuffer", 11) == 0:
        return G_FROMBUFFER
    if ml == 5 and memcmp(mod, b"numpy", 5) == 0:
        if nl == 7 and memcmp(name, b"ndarray", 7) == 0:
            return G_NDARRAY
        if nl == 5 and memcmp(name, b"dtype", 5) == 0:
            return G_DTYPE
    return 0


cdef bint _shape_of(_Scan s, Val* t, Obj* arr) noexcept nogil:
    """Tuple of 1 or 2 non-negative ints -> arr.ndim/d0/d1."""
    cdef Val* e
    cdef int64_t k
    if t.kind != V_TUPLE or t.taint or t.b < 1 or t.b > 2:
        return False
    for k in range(t.b):
        e = _pv(s, t.a + k)
        if e.kind != V_INT or e.a < 0 or e.a > (<int64_t>1 << 40):
            return False
    arr.ndim = t.b
    arr.d0 = _pv(s, t.a).a
    arr.d1 = _pv(s, t.a + 1).a if t.b == 2 else 1
    return True


cdef int _reduce(_Scan s, Val* f, Val* args, Val* out) noexcept nogil:
    """Symbolic REDUCE; the result is opaque unless it is one of NumPy's known calls."""
    cdef Val* e
    cdef int64_t o, k
    cdef Obj* ob
    cdef Obj* dt
    cdef uint64_t u = 0
    out.kind = V_OPAQUE
    out.taint = 1
    if f.taint or args.taint or f.kind != V_GLOBAL or args.kind != V_TUPLE:
        return 0
    e = _pv(s, args.a)
    if f.a == G_RECON and args.b == 3:
        # _reconstruct(ndarray, (0,), b'b'): an empty array, filled by BUILD
        if (e[0].kind == V_GLOBAL and e[0].a == G_NDARRAY and e[1].kind == V_TUPLE and e[1].b == 1
                and _int_is(_pv(s, e[1].a), 0) and e[2].kind == V_BYTES and e[2].b == 1
                and s.buf[e[2].a] == 98):
            o = _new_obj(s, O_ARRAY, A_PENDING)
            if o < 0:
                return -1
            out.kind = V_OBJ
            out.taint = 0
            out.a = o
    elif f.a == G_DTYPE and args.b == 3:
        # dtype('f8' | 'i8', False, True), completed by BUILD
        if e[1].kind == V_BOOL and e[1].a == 0 and e[2].kind == V_BOOL and e[2].a == 1:
            if _str_is(s, &e[0], b"f8", 2):
                o = _new_obj(s, O_DTYPE, DT_PENDING_F8)
            elif _str_is(s, &e[0], b"i8", 2):
                o = _new_obj(s, O_DTYPE, DT_PENDING_I8)
            else:
                return 0
            if o < 0:
                return -1
            out.kind = V_OBJ
            out.taint = 0
            out.a = o
    elif f.a == G_FROMBUFFER and args.b == 4:
        # _frombuffer(buf, dtype, shape, order), protocol 5 in-band
        if ((e[0].kind == V_BYTES or e[0].kind == V_BYTEARRAY) and e[1].kind == V_OBJ
                and _ob(s, e[1].a).kind == O_DTYPE and e[3].kind == V_STR and e[3].b == 1
                and (s.buf[e[3].a] == 67 or s.buf[e[3].a] == 70)):
            o = _new_obj(s, O_ARRAY, A_BUILT)
            if o < 0:
                return -1
            ob = _ob(s, o)
            if not _shape_of(s, &e[2], ob):
                ob.state = 0
            ob.raw_off = e[0].a
            ob.raw_len = e[0].b
            ob.dtype = e[1].a
            ob.fortran = s.buf[e[3].a] == 70
            out.kind = V_OBJ
            out.taint = 0
            out.a = o
    elif f.a == G_SCALAR and args.b == 2:
        # scalar(dtype('i8'), 8 bytes): a numpy.int64 tracklet id
        if (e[0].kind == V_OBJ and _ob(s, e[0].a).kind == O_DTYPE and _ob(s, e[0].a).state == DT_I8
                and e[1].kind == V_BYTES and e[1].b == 8):
            for k in range(8):
                u |= (<uint64_t>s.buf[e[1].a + k]) << (8 * k)
            out.kind = V_NPINT
            out.taint = 0
            out.a = <int64_t>u
    return 0


cdef void _build(_Scan s, Val* obj, Val* state) noexcept nogil:
    """Symbolic BUILD (``__setstate__``) on dtypes and arrays; anything else turns opaque."""
    cdef Val* e
    cdef Obj* ob
    if obj.kind != V_OBJ or state.taint or state.kind != V_TUPLE:
        obj.kind = V_OPAQUE
        obj.taint = 1
        return
    ob = _ob(s, obj.a)
    e = _pv(s, state.a)
    if ob.kind == O_DTYPE and (ob.state == DT_PENDING_F8 or ob.state == DT_PENDING_I8):
        # (3, '<', None, None, None, -1, -1, 0): a plain little-endian dtype
        if (state.b == 8 and _int_is(&e[0], 3) and e[2].kind == V_NONE and e[3].kind == V_NONE
                and e[4].kind == V_NONE and _int_is(&e[5], -1) and _int_is(&e[6], -1)
                and _int_is(&e[7], 0)):
            if _str_is(s, &e[1], b"<", 1):
                ob.state = DT_F8 if ob.state == DT_PENDING_F8 else DT_I8
            else:
                ob.state = DT_OTHER
            return
    elif ob.kind == O_ARRAY and ob.state == A_PENDING:
        # (1, shape, dtype, is_fortran, rawdata)
        if (state.b == 5 and _int_is(&e[0], 1) and e[2].kind == V_OBJ
                and _ob(s, e[2].a).kind == O_DTYPE and e[3].kind == V_BOOL
                and e[4].kind == V_BYTES):
            ob.state = A_BUILT if _shape_of(s, &e[1], ob) else 0
            ob.dtype = e[2].a
            ob.fortran = e[3].a
            ob.raw_off = e[4].a
            ob.raw_len = e[4].b
            return
    obj.kind = V_OPAQUE
    obj.taint = 1


cdef inline int _need(Py_ssize_t p, Py_ssize_t n, Py_ssize_t end) noexcept nogil:
    return n < 0 or n > end - p


cdef int _le_len(const unsigned char* q, int width, Py_ssize_t* out) noexcept nogil:
    cdef uint64_t u = 0
    cdef int k
    for k in range(width):
        u |= (<uint64_t>q[k]) << (8 * k)
    if u > <uint64_t>0x7fffffffffff:
        return -1
    out[0] = <Py_ssize_t>u
    return 0


cdef int _memo_put(_Scan s, int64_t idx, Val* v, Py_ssize_t pos) noexcept nogil:
    cdef MemoEnt* m
    cdef Py_ssize_t old = s.memo.n, k
    if idx < 0 or idx >= MAX_MEMO or idx > 16 * s.size + 64:
        return -1
    if idx >= s.memo.n:
        if _vec_reserve(&s.memo, idx + 1):
            return -1
        for k in range(old, idx + 1):
            (<MemoEnt*>s.memo.p)[k].v.kind = V_UNSET
        s.memo.n = idx + 1
    m = (<MemoEnt*>s.memo.p) + idx
    if m.v.kind == V_UNSET:
        s.memo_len += 1
        m.first_pos = pos
    m.v = v[0]
    m.put_pos = pos
    return 0


cdef int _run(_Scan s) noexcept nogil:
    """Run the opcodes; 0 on STOP with the top-level value in ``s.top``, -1 otherwise."""
    cdef const unsigned char* b = s.buf
    cdef Py_ssize_t p = 0, end = s.size, n, op_pos, m, k, base
    cdef unsigned char op
    cdef Val v
    cdef Val* x
    cdef Val* y
    cdef Val* pv
    cdef Item* it
    cdef Obj* d
    cdef MemoEnt* me
    cdef int64_t idx, o, t
    cdef int gid
    cdef const unsigned char* q
    while True:
        if p >= end:
            return -1
        op_pos = p
        op = b[p]
        p += 1
        if op == 0x80:  # PROTO
            if _need(p, 1, end):
                return -1
            s.proto = b[p]
            if s.proto < 2 or s.proto > 5:
                return -1
            p += 1
        elif op == 0x95:  # FRAME
            # a frame longer than the rest of the file is a truncated file
            if _need(p, 8, end) or _le_len(b + p, 8, &n) or _need(p + 8, n, end):
                return -1
            if (<Py_ssize_t*>_vec_push(&s.frames)) == NULL:
                return -1
            (<Py_ssize_t*>s.frames.p)[s.frames.n - 1] = op_pos
            p += 8
        elif op == 46:  # STOP
            if s.stack.n != 1 or s.marks.n != 0:
                return -1
            s.top = _sv(s, 0)[0]
            return 0
        elif op == 40:  # MARK
            if _vec_push(&s.marks) == NULL:
                return -1
            _mk(s, s.marks.n - 1).n = s.stack.n
            _mk(s, s.marks.n - 1).pos = op_pos
            _mk(s, s.marks.n - 1).mlen = s.memo_len
        elif op == 78:  # NONE
            if _push(s, V_NONE, 0, 0, op_pos, 0):
                return -1
        elif op == 0x88 or op == 0x89:  # NEWTRUE / NEWFALSE
            if _push(s, V_BOOL, op == 0x88, 0, op_pos, 0):
                return -1
        elif op == 75:  # BININT1
            if _need(p, 1, end) or _push(s, V_INT, b[p], 0, op_pos, 0):
                return -1
            p += 1
        elif op == 77:  # BININT2
            if _need(p, 2, end) or _push(s, V_INT, b[p] | (b[p + 1] << 8), 0, op_pos, 0):
                return -1
            p += 2
        elif op == 74:  # BININT
            if _need(p, 4, end):
                return -1
            t = <int32_t>(<uint32_t>b[p] | (<uint32_t>b[p + 1] << 8) | (<uint32_t>b[p + 2] << 16)
                          | (<uint32_t>b[p + 3] << 24))
            if _push(s, V_INT, t, 0, op_pos, 0):
                return -1
            p += 4
        elif op == 0x8a or op == 0x8b:  # LONG1 / LONG4: small ones are ints, others opaque
            k = 1 if op == 0x8a else 4
            if _need(p, k, end) or _le_len(b + p, <int>k, &n) or _need(p + k, n, end):
                return -1
            q = b + p + k
            if n <= 8:
                t = 0
                for m in range(n):
                    t |= (<int64_t>q[m]) << (8 * m)
                if n and n < 8 and (q[n - 1] & 0x80):
                    t -= (<int64_t>1) << (8 * n)
                if _push(s, V_INT, t, 0, op_pos, 0):
                    return -1
            elif _push(s, V_OPAQUE, 0, 0, op_pos, 1):
                return -1
            p += k + n
        elif op == 71:  # BINFLOAT
            if _need(p, 8, end) or _push(s, V_OPAQUE, 0, 0, op_pos, 1):
                return -1
            p += 8
        elif (op == 0x8c or op == 88 or op == 0x8d or op == 67 or op == 66 or op == 0x8e
              or op == 0x96):
            # SHORT_BINUNICODE / BINUNICODE / BINUNICODE8 / SHORT_BINBYTES / BINBYTES /
            # BINBYTES8 / BYTEARRAY8: kept as offsets into the buffer
            k = 1 if (op == 0x8c or op == 67) else (4 if (op == 88 or op == 66) else 8)
            if _need(p, k, end) or _le_len(b + p, <int>k, &n) or _need(p + k, n, end):
                return -1
            gid = V_STR if (op == 0x8c or op == 88 or op == 0x8d) else (
                V_BYTEARRAY if op == 0x96 else V_BYTES)
            if _push(s, gid, p + k, n, op_pos, 0):
                return -1
            p += k + n
        elif op == 41:  # EMPTY_TUPLE
            if _push(s, V_TUPLE, s.pool.n, 0, op_pos, 0):
                return -1
        elif op == 0x85 or op == 0x86 or op == 0x87 or op == 116:  # TUPLE1/2/3, TUPLE
            if op == 116:
                if s.marks.n == 0:
                    return -1
                s.marks.n -= 1
                base = _mk(s, s.marks.n).n
                n = s.stack.n - base
                k = _mk(s, s.marks.n).pos  # the tuple's bytes start at its MARK
                t = _mk(s, s.marks.n).mlen
            else:
                n = op - 0x84
                if s.stack.n < n or (s.marks.n and s.stack.n - n < _mk(s, s.marks.n - 1).n):
                    return -1
                base = s.stack.n - n
                k = _sv(s, base).pos if n else op_pos
                t = _sv(s, base).mlen if n else s.memo_len
            if _vec_reserve(&s.pool, s.pool.n + n):
                return -1
            v.kind = V_TUPLE
            v.taint = 0
            v.a = s.pool.n
            v.b = n
            v.pos = k
            v.mlen = t
            for m in range(n):
                _pv(s, s.pool.n + m)[0] = _sv(s, base + m)[0]
                if _sv(s, base + m).taint:
                    v.taint = 1
            s.pool.n += n
            s.stack.n = base
            if v.taint:
                v.kind = V_OPAQUE
            x = <Val*>_vec_push(&s.stack)
            if x == NULL:
                return -1
            x[0] = v
        elif op == 93 or op == 0x8f:  # EMPTY_LIST / EMPTY_SET
            if _push(s, V_OPAQUE, 0, 0, op_pos, 1):
                return -1
        elif op == 125:  # EMPTY_DICT
            o = _new_obj(s, O_DICT, 0)
            if o < 0 or _push(s, V_OBJ, o, 0, op_pos, 0):
                return -1
        elif op == 97 or op == 0x90 or op == 101:  # APPEND (1 item) / ADDITEMS, APPENDS (to mark)
            if op == 97:
                base = s.stack.n - 1
            else:
                if s.marks.n == 0:
                    return -1
                s.marks.n -= 1
                base = _mk(s, s.marks.n).n
            if base < 1 or (s.marks.n and base - 1 < _mk(s, s.marks.n - 1).n):
                return -1
            x = _sv(s, base - 1)
            if x.kind != V_OPAQUE:
                return -1
            s.stack.n = base
        elif op == 0x91:  # FROZENSET (to mark)
            if s.marks.n == 0:
                return -1
            s.marks.n -= 1
            base = _mk(s, s.marks.n).n
            k = _mk(s, s.marks.n).pos
            t = _mk(s, s.marks.n).mlen
            s.stack.n = base
            if _push(s, V_OPAQUE, 0, 0, k, 1):
                return -1
            _sv(s, s.stack.n - 1).mlen = t
        elif op == 115 or op == 117:  # SETITEM / SETITEMS
            if op == 115:
                base = s.stack.n - 2
            else:
                if s.marks.n == 0:
                    return -1
                s.marks.n -= 1
                base = _mk(s, s.marks.n).n
            if base < 1 or (s.stack.n - base) % 2 or (
                    s.marks.n and base - 1 < _mk(s, s.marks.n - 1).n):
                return -1
            x = _sv(s, base - 1)
            if x.kind == V_OBJ and _ob(s, x.a).kind == O_DICT:
                d = _ob(s, x.a)
                for m in range(base, s.stack.n, 2):
                    it = <Item*>_vec_push(&s.items)
                    if it == NULL:
                        return -1
                    d = _ob(s, x.a)
                    it.key = _sv(s, m)[0]
                    it.value = _sv(s, m + 1)[0]
                    it.next = -1
                    # the value's bytes end where the next key starts (or at this opcode)
                    it.value.b = it.value.b if it.value.kind != V_OPAQUE else (
                        _sv(s, m + 2).pos if m + 2 < s.stack.n else op_pos)
                    if d.tail >= 0:
                        (<Item*>s.items.p)[d.tail].next = s.items.n - 1
                    else:
                        d.head = s.items.n - 1
                    d.tail = s.items.n - 1
                    d.count += 1
            elif x.kind != V_OPAQUE:
                return -1
            s.stack.n = base
        elif op == 99:  # GLOBAL "module\nname\n"
            m = p
            while m < end and b[m] != 10:
                m += 1
            k = m + 1
            while k < end and b[k] != 10:
                k += 1
            if k >= end:
                return -1
            gid = _global_id(b + p, m - p, b + m + 1, k - m - 1)
            if _push(s, V_GLOBAL if gid else V_OPAQUE, gid, 0, op_pos, gid == 0):
                return -1
            p = k + 1
        elif op == 0x93:  # STACK_GLOBAL
            if s.stack.n < 2 or (s.marks.n and s.stack.n - 2 < _mk(s, s.marks.n - 1).n):
                return -1
            x = _sv(s, s.stack.n - 2)
            y = _sv(s, s.stack.n - 1)
            if x.kind != V_STR or y.kind != V_STR:
                return -1
            gid = _global_id(b + x.a, x.b, b + y.a, y.b)
            k = x.pos
            t = x.mlen
            s.stack.n -= 2
            if _push(s, V_GLOBAL if gid else V_OPAQUE, gid, 0, k, gid == 0):
                return -1
            _sv(s, s.stack.n - 1).mlen = t
        elif op == 82 or op == 0x81:  # REDUCE / NEWOBJ
            if s.stack.n < 2 or (s.marks.n and s.stack.n - 2 < _mk(s, s.marks.n - 1).n):
                return -1
            x = _sv(s, s.stack.n - 2)
            y = _sv(s, s.stack.n - 1)
            if y.kind != V_TUPLE and y.kind != V_OPAQUE:
                return -1
            k = x.pos
            t = x.mlen
            if op == 82:
                if _reduce(s, x, y, &v):
                    return -1
            else:
                v.kind = V_OPAQUE
                v.taint = 1
            v.pos = k
            v.mlen = t
            s.stack.n -= 1
            _sv(s, s.stack.n - 1)[0] = v
        elif op == 0x92:  # NEWOBJ_EX
            if s.stack.n < 3 or (s.marks.n and s.stack.n - 3 < _mk(s, s.marks.n - 1).n):
                return -1
            k = _sv(s, s.stack.n - 3).pos
            t = _sv(s, s.stack.n - 3).mlen
            s.stack.n -= 2
            x = _sv(s, s.stack.n - 1)
            x.kind = V_OPAQUE
            x.taint = 1
            x.pos = k
            x.mlen = t
        elif op == 98:  # BUILD
            if s.stack.n < 2 or (s.marks.n and s.stack.n - 2 < _mk(s, s.marks.n - 1).n):
                return -1
            _build(s, _sv(s, s.stack.n - 2), _sv(s, s.stack.n - 1))
            s.stack.n -= 1
        elif op == 104 or op == 106:  # BINGET / LONG_BINGET
            k = 1 if op == 104 else 4
            if _need(p, k, end):
                return -1
            idx = b[p] if k == 1 else <int64_t>(<uint32_t>b[p] | (<uint32_t>b[p + 1] << 8)
                                                | (<uint32_t>b[p + 2] << 16) | (<uint32_t>b[p + 3] << 24))
            p += k
            if idx >= s.memo.n:
                return -1
            me = (<MemoEnt*>s.memo.p) + idx
            if me.v.kind == V_UNSET:
                return -1
            x = <Val*>_vec_push(&s.stack)
            if x == NULL:
                return -1
            x[0] = (<MemoEnt*>s.memo.p)[idx].v
            x.pos = op_pos
            x.mlen = s.memo_len
        elif op == 113 or op == 114 or op == 0x94:  # BINPUT / LONG_BINPUT / MEMOIZE
            if s.stack.n == 0 or (s.marks.n and s.stack.n <= _mk(s, s.marks.n - 1).n):
                return -1
            if op == 0x94:
                idx = s.memo_len
                s.memoize_ops = True
            else:
                k = 1 if op == 113 else 4
                if _need(p, k, end):
                    return -1
                idx = b[p] if k == 1 else <int64_t>(<uint32_t>b[p] | (<uint32_t>b[p + 1] << 8)
                                                    | (<uint32_t>b[p + 2] << 16) | (<uint32_t>b[p + 3] << 24))
                p += k
                s.explicit_puts = True
            if _memo_put(s, idx, _sv(s, s.stack.n - 1), op_pos):
                return -1
        elif op == 48:  # POP: only untainted values may vanish
            if s.stack.n == 0:
                return -1
            if s.marks.n and s.stack.n == _mk(s, s.marks.n - 1).n:
                s.marks.n -= 1
            else:
                if _sv(s, s.stack.n - 1).taint:
                    return -1
                s.stack.n -= 1
        elif op == 50:  # DUP
            if s.stack.n == 0:
                return -1
            x = <Val*>_vec_push(&s.stack)
            if x == NULL:
                return -1
            x[0] = _sv(s, s.stack.n - 2)[0]
            x.pos = op_pos
            x.mlen = s.memo_len
        else:  # POP_MARK, persistent ids, extensions, out-of-band buffers, text opcodes
            return -1


cdef object _seed_value(_Scan s, Val* v, int depth):
    """A memo entry borrowed by an opaque span as the Python object it stands for.

    Raises LookupError for entries that cannot be rebuilt alone (dicts, arrays, opaque).
    """
    cdef int64_t k
    cdef Obj* ob
    if depth > 50:
        raise LookupError
    if v.kind == V_NONE:
        return None
    if v.kind == V_BOOL:
        return bool(v.a)
    if v.kind == V_INT:
        return int(v.a)
    if v.kind == V_NPINT:
        return np.int64(v.a)
    if v.kind == V_STR:
        return (<const char*>s.buf + v.a)[:v.b].decode("utf-8")
    if v.kind == V_BYTES:
        return (<const char*>s.buf + v.a)[:v.b]
    if v.kind == V_TUPLE and not v.taint:
        return tuple([_seed_value(s, _pv(s, v.a + k), depth + 1) for k in range(v.b)])
    if v.kind == V_GLOBAL:
        return _GLOBALS[v.a]
    if v.kind == V_OBJ:
        ob = _ob(s, v.a)
        if ob.kind == O_DTYPE and ob.state == DT_F8:
            return np.dtype("<f8")
        if ob.kind == O_DTYPE and ob.state == DT_I8:
            return np.dtype("<i8")
    raise LookupError


_GLOBALS = {}


def set_globals(reconstruct, ndarray, dtype, frombuffer, scalar):
    """Register the NumPy objects the known globals stand for (used to seed spans)."""
    _GLOBALS.update({G_RECON: reconstruct, G_NDARRAY: ndarray, G_DTYPE: dtype,
                     G_FROMBUFFER: frombuffer, G_SCALAR: scalar})


cdef Obj* _check_block(_Scan s, Obj* d) noexcept:
    """Pass 1 of :func:`_compact`: every frame checked (keys, dtypes, shapes, sizes) and
    its frame number stored in ``key.b``; the first frame's array, or NULL when the dict
    does not fit one block (``d.count`` must be > 0)."""
    cdef int64_t i, prev = -1, k, fnum, nbytes = 0
    cdef Item* it
    cdef Obj* a
    cdef Obj* first = NULL
    cdef const unsigned char* ks
    i = d.head
    while i >= 0:
        it = (<Item*>s.items.p) + i
        if it.key.kind == V_STR:
            if it.key.b <= 5 or it.key.b > 23:
                return NULL
            ks = s.buf + it.key.a
            if memcmp(ks, b"frame", 5) != 0:
                return NULL
            fnum = 0
            for k in range(5, it.key.b):
                if ks[k] < 48 or ks[k] > 57:
                    return NULL
                fnum = fnum * 10 + (ks[k] - 48)
            # the key now reads as its frame number, so a second check gives the same
            it.key.kind = V_INT
            it.key.a = fnum
        elif it.key.kind == V_INT:
            fnum = it.key.a
        else:
            return NULL
        # strictly increasing frame numbers: keys are then distinct, as in the dict
        if fnum <= prev:
            return NULL
        prev = fnum
        it.key.b = fnum
        if it.value.kind != V_OBJ or it.value.taint:
            return NULL
        a = _ob(s, it.value.a)
        if (a.kind != O_ARRAY or a.state != A_BUILT or a.fortran
                or _ob(s, a.dtype).state != DT_F8):
            return NULL
        if first == NULL:
            first = a
            nbytes = 8 * a.d0 * a.d1
        elif a.ndim != first.ndim or a.d0 != first.d0 or a.d1 != first.d1:
            return NULL
        if a.raw_len != nbytes:
            return NULL
        i = it.next
    return first


cdef void _copy_block(_Scan s, Obj* d, int64_t* ip, char* dst, int64_t nbytes) noexcept nogil:
    """Pass 2 of :func:`_compact`: frame numbers and frame bytes, in dict order."""
    cdef int64_t i = d.head, k = 0
    cdef Item* it
    cdef Obj* a
    while i >= 0:
        it = (<Item*>s.items.p) + i
        ip[k] = it.key.b
        a = _ob(s, it.value.a)
        memcpy(dst + k * nbytes, s.buf + a.raw_off, nbytes)
        k += 1
        i = it.next


cdef object _compact(_Scan s, Obj* d):
    """A tracklet dict's items as ``(inds, data)``, or None when they do not fit one block."""
    cdef int64_t n = d.count
    cdef Obj* first
    if n == 0:
        return {}
    first = _check_block(s, d)
    if first == NULL:
        return None
    inds = np.empty(n, dtype=np.int64)
    if first.ndim == 2:
        shape = (n, first.d0, first.d1)
    else:
        shape = (n, first.d0)
    data = np.empty(shape, dtype=np.float64)
    cdef int64_t* ip = <int64_t*>cnp.PyArray_DATA(inds)
    cdef char* dst = <char*>cnp.PyArray_DATA(data)
    with nogil:
        _copy_block(s, d, ip, dst, 8 * first.d0 * first.d1)
    return inds, data


cdef object _packed_blocks(_Scan s, Obj* top):
    """Every tracklet dict (all top-level dicts but ``"single"`` and empty ones) copied
    into one ``(inds, data)`` buffer pair, in file order, when they all fit one block of
    the same frame shape: ``{item index: (inds view, data view)}`` plus the buffers;
    None otherwise (each dict then gets its own block)."""
    cdef int64_t i, total = 0, row = 0, nbytes = 0
    cdef Item* it
    cdef Obj* d
    cdef Obj* first
    cdef Obj* shape0 = NULL
    cdef list members = []
    i = top.head
    while i >= 0:
        it = (<Item*>s.items.p) + i
        if (it.value.kind == V_OBJ and not it.value.taint and _ob(s, it.value.a).kind == O_DICT
                and _ob(s, it.value.a).count > 0
                and not (it.key.kind == V_STR and it.key.b == 6 and memcmp(s.buf + it.key.a, b"single", 6) == 0)):
            d = _ob(s, it.value.a)
            first = _check_block(s, d)
            if first == NULL:
                return None
            if shape0 == NULL:
                shape0 = first
            elif first.ndim != shape0.ndim or first.d0 != shape0.d0 or first.d1 != shape0.d1:
                return None
            members.append(i)
            total += d.count
        i = it.next
    if shape0 == NULL:
        return None
    inds = np.empty(total, dtype=np.int64)
    if shape0.ndim == 2:
        shape = (total, shape0.d0, shape0.d1)
    else:
        shape = (total, shape0.d0)
    data = np.empty(shape, dtype=np.float64)
    cdef int64_t* ip = <int64_t*>cnp.PyArray_DATA(inds)
    cdef char* dst = <char*>cnp.PyArray_DATA(data)
    nbytes = 8 * shape0.d0 * shape0.d1
    out = {}
    for i in members:
        d = _ob(s, (<Item*>s.items.p)[i].value.a)
        with nogil:
            _copy_block(s, d, ip + row, dst + row * nbytes, nbytes)
        out[i] = (inds[row:row + d.count], data[row:row + d.count])
        row += d.count
    return out, inds, data


cdef Py_ssize_t _op_len(const unsigned char* b, Py_ssize_t p, Py_ssize_t stop) noexcept nogil:
    """Bytes taken by the opcode at ``p`` (operands included), -1 past ``stop`` or unknown."""
    cdef unsigned char op = b[p]
    cdef Py_ssize_t n = 0, k = 0, m
    if op == 0x80 or op == 75 or op == 104 or op == 113:
        n = 2
    elif op == 77:
        n = 3
    elif op == 74 or op == 106 or op == 114:
        n = 5
    elif op == 71 or op == 0x95:
        n = 9
    elif op == 0x8a or op == 0x8c or op == 67:
        k = 1
    elif op == 0x8b or op == 88 or op == 66:
        k = 4
    elif op == 0x8d or op == 0x8e or op == 0x96:
        k = 8
    elif op == 99:
        m = p + 1
        while m < stop and b[m] != 10:
            m += 1
        m += 1
        while m < stop and b[m] != 10:
            m += 1
        return m + 1 - p if m < stop else -1
    elif (op == 46 or op == 40 or op == 48 or op == 50 or op == 78 or op == 0x88 or op == 0x89
          or op == 41 or op == 0x85 or op == 0x86 or op == 0x87 or op == 116 or op == 93
          or op == 0x8f or op == 125 or op == 97 or op == 0x90 or op == 101 or op == 0x91
          or op == 115 or op == 117 or op == 0x93 or op == 82 or op == 0x81 or op == 0x92
          or op == 98 or op == 0x94):
        n = 1
    else:
        return -1
    if k:
        if _need(p + 1, k, stop) or _le_len(b + p + 1, <int>k, &n) or _need(p + 1 + k, n, stop):
            return -1
        n += 1 + k
    if _need(p, n, stop):
        return -1
    return n


cdef object _span_body(_Scan s, Py_ssize_t start, Py_ssize_t stop, Py_ssize_t mlen):
    """One opaque top-level value's opcodes, made readable alone: FRAME opcodes dropped,
    MEMOIZE turned into LONG_BINPUT with the index it had in the whole file; plus the memo
    entries it borrows from before ``start`` (rebuilt), or None when that is not possible."""
    cdef Py_ssize_t p = start, n, next_idx = mlen
    cdef int64_t idx
    cdef unsigned char op
    cdef const unsigned char* b = s.buf
    cdef MemoEnt* me
    cdef bint borrowed
    if s.memoize_ops and s.explicit_puts:  # numbering cannot be replayed alone
        return None
    out = bytearray()
    seeds = {}
    put_here = set()
    while p < stop:
        n = _op_len(b, p, stop)
        if n < 0:
            return None
        op = b[p]
        if op == 0x95:
            pass
        elif op == 0x94:
            out += b"r" + (<object>next_idx).to_bytes(4, "little")
            next_idx += 1
        else:
            if op == 113 or op == 114 or op == 104 or op == 106:
                idx = b[p + 1] if n == 2 else <int64_t>(<uint32_t>b[p + 1] | (<uint32_t>b[p + 2] << 8)
                                                        | (<uint32_t>b[p + 3] << 16) | (<uint32_t>b[p + 4] << 24))
                if op == 113 or op == 114:
                    put_here.add(idx)
                else:
                    borrowed = idx < mlen if s.memoize_ops else idx not in put_here
                    if borrowed and idx not in seeds:
                        if idx >= s.memo.n:
                            return None
                        me = (<MemoEnt*>s.memo.p) + idx
                        # only entries put once, before the span, can be rebuilt here
                        if me.v.kind == V_UNSET or me.put_pos >= start or me.first_pos != me.put_pos:
                            return None
                        try:
                            seeds[idx] = _seed_value(s, &me.v, 0)
                        except (LookupError, UnicodeDecodeError):
                            return None
            out += b[p:p + n]
        p += n
    if p != stop:
        return None
    return bytes(out), seeds


def scan_tracklets(const unsigned char[::1] data not None, bint pack=False):
    """Read a tracklet pickle's bytes symbolically (see the section comment above).

    Parameters
    ----------
    data : bytes-like, shape (n_bytes,)
        The whole file.

    Returns
    -------
    None, or (proto, entries)
        None when the file is not in the recognised grammar (the caller must use the
        general reader).  ``entries`` lists the top-level ``(key, kind, payload)`` in
        file order: ``kind`` "block" with ``(inds int64 (n,), data float64 (n, *shape))``,
        "empty" (an empty dict), or "span" with ``(body, memo)``: the value's opcodes
        (FRAME opcodes removed) and the memo the restricted unpickler needs to read them
        alone (indices defined before the span; borrowed entries rebuilt, others None).
        With ``pack``, the tracklets' blocks are views of one buffer pair, in file order
        (when their frames all have one shape), and a third item ``(inds, data)`` holds
        those buffers (None when not packed).
    """
    cdef _Scan s
    # one parser state is kept for the next call: its buffers are then already mapped
    # (page faults on fresh buffers cost as much as the parsing); taken and given back
    # under the GIL, so concurrent calls each get their own
    try:
        s = _SPARE.pop()
    except IndexError:
        s = _Scan()
    s.reset()
    try:
        return _scan(s, data, pack)
    finally:
        if (s.memo.cap * s.memo.size + s.pool.cap * s.pool.size + s.items.cap * s.items.size
                + s.objs.cap * s.objs.size) < (256 << 20) and not _SPARE:
            _SPARE.append(s)


_SPARE = []


cdef object _scan(_Scan s, const unsigned char[::1] data, bint pack):
    cdef int rc
    cdef Obj* top
    cdef Item* it
    cdef int64_t i, j, lo, hi
    cdef Py_ssize_t start, stop, f
    cdef MemoEnt* me
    s.buf = &data[0] if data.shape[0] else NULL
    s.size = data.shape[0]
    if s.size < 2:
        return None
    # sized from the file (about 200 bytes per frame) so that growing never copies
    if (_vec_reserve(&s.memo, s.size // 32 + 64) or _vec_reserve(&s.pool, s.size // 24 + 64)
            or _vec_reserve(&s.objs, s.size // 96 + 64) or _vec_reserve(&s.items, s.size // 96 + 64)
            or _vec_reserve(&s.stack, 256) or _vec_reserve(&s.marks, 64)):
        raise MemoryError
    with nogil:
        rc = _run(s)
    if rc or s.top.kind != V_OBJ or s.top.taint or _ob(s, s.top.a).kind != O_DICT:
        return None
    top = _ob(s, s.top.a)
    packed = _packed_blocks(s, top) if pack else None
    entries = []
    i = top.head
    while i >= 0:
        it = (<Item*>s.items.p) + i
        if it.key.kind == V_STR:
            try:
                key = (<const char*>s.buf + it.key.a)[:it.key.b].decode("utf-8")
            except UnicodeDecodeError:
                return None
        elif it.key.kind == V_INT:
            key = int(it.key.a)
        elif it.key.kind == V_NPINT:
            key = np.int64(it.key.a)
        else:
            return None
        if packed is not None and i in packed[0]:
            entries.append((key, "block", packed[0][i]))
        elif it.value.kind == V_OBJ and not it.value.taint and _ob(s, it.value.a).kind == O_DICT:
            block = _compact(s, _ob(s, it.value.a))
            if block is None:
                return None
            entries.append((key, "empty" if type(block) is dict else "block", block))
        elif it.value.kind == V_OPAQUE:
            start, stop = it.value.pos, it.value.b
            if not 0 <= start < stop <= s.size:
                return None
            span = _span_body(s, start, stop, it.value.mlen)
            if span is None:
                return None
            entries.append((key, "span", span))
        else:
            return None
        i = it.next
    if pack:
        return s.proto, entries, (None if packed is None else packed[1:])
    return s.proto, entries
