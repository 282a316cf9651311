# cython: language_level=3
"""Compiled assembler: packs DLC per-frame detection dicts into flat buffers, then runs
DeepLabCut's per-frame assembly (``assembly_core.h``) on them without the GIL, on one or
several threads.  The gateway :mod:`mapose.kernels.assembly` validates parameters; this
module validates the per-frame data while packing (it has to look at every array anyway).
"""
from libc.stdint cimport int64_t, uint16_t
from libc.math cimport isfinite, isinf
from libcpp cimport bool as cbool
from libcpp.map cimport map as cmap
from libcpp.vector cimport vector
from cpython.dict cimport PyDict_Next
from cpython.long cimport PyLong_CheckExact, PyLong_AsLongAndOverflow
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cython.operator cimport dereference as deref, preincrement as inc

import numpy as np
cimport numpy as cnp

cnp.import_array()


cdef extern from "lsap.h" namespace "mapose" nogil:
    cdef cppclass LsapWorkspace:
        int last_path
        int solve_max_unique_first(long nr, long nc, const double* cost, long* out_rows,
                                   long* out_cols, cbool try_dominant)


cdef extern from "assembly_window.h" namespace "mapose_asm" nogil:
    cdef cppclass TreePtr:
        TreePtr()
    TreePtr make_tree(const double* vecs, size_t n_vectors) except +
    size_t tree_size(const TreePtr& t)
    const double* tree_data(const TreePtr& t)
    double tree_query(const TreePtr& t, const double* v, long* index)


cdef extern from "assembly_core.h" namespace "mapose_asm" nogil:
    cdef cppclass Calib:
        int d
        const double* mean
        const double* var
        const double* inv_cov
        cbool little

    cdef cppclass Params:
        int n_multi, n_keypoints, max_n, min_n_links, window_size
        cbool greedy, identity_only, force_fusion, add_discarded
        double pcutoff, max_overlap, gamma
        cbool window_brute
        const Calib* calib
        double min_aff[3]
        int n_edges
        cbool dup_edges
        const int* edge_s
        const int* edge_t

    cdef cppclass LinkOut:
        int j1, j2
        double affinity

    cdef cppclass AssemblyOut:
        vector[double] data
        double affinity
        vector[int] links
        vector[int] joints

    cdef cppclass FrameOut:
        cbool has_assemblies, has_unique
        vector[double] unique
        vector[LinkOut] links
        vector[AssemblyOut] assemblies
        vector[double] tree

    cdef cppclass Batch:
        int n_edges
        vector[int64_t] joint_off
        vector[double] x, y, conf
        vector[int] label, group
        vector[signed char] xdtype
        vector[signed char] has_cost, dtype
        vector[const char*] cost_ptr
        vector[int64_t] cost_s0, cost_s1

    cdef cppclass FrameAssembler:
        FrameAssembler(const Params& p)

    double half_to_double(uint16_t h)
    int solve_dense_view(LsapWorkspace& ws, long nr, long nc, const double* cost, long* rows, long* cols)
    void run_batch(const Params& P, const Batch& B, const int64_t* frame_index,
                   vector[FrameOut]& outs, int n_threads,
                   cmap[int64_t, TreePtr]& trees) except +
    void run_frames(FrameAssembler& fa, const Batch& B, size_t lo, size_t hi,
                    vector[FrameOut]& outs) except +


cdef extern from *:
    """
    // Fast path of pack(): borrowed references, no Python calls, for the usual
    // native-order float16/32/64 ndarrays; anything else goes through the general code.
    //
    // The per-frame objects of a _full.pickle (a dict per edge, two arrays per entry,
    // each array's shape buffer and data) are scattered over the heap and mostly out of
    // cache, so packing is bound by memory latency, not instructions: every load depends
    // on the previous one (dict -> key table -> array -> shape / data).  The fast path
    // therefore walks a frame in stages, one pass per level over all edges, starting the
    // loads of the next level (prefetch) before using any of them: the misses of one
    // level overlap instead of queueing one after another.
    #if defined(__GNUC__)
    #define MP_PREFETCH(p) __builtin_prefetch((const void*)(p))
    #else
    #define MP_PREFETCH(p) ((void)0)
    #endif
    static inline int mp_float_code(PyObject* o) {
        if (!PyArray_Check(o)) return -1;
        PyArrayObject* a = (PyArrayObject*)o;
        if (!PyArray_ISNOTSWAPPED(a)) return -1;
        const int t = PyArray_TYPE(a);
        return t == NPY_DOUBLE ? 0 : t == NPY_FLOAT ? 1 : t == NPY_HALF ? 2 : -1;
    }
    static inline double mp_read(const char* p, int code) {
        return code == 0 ? *(const double*)p
             : code == 1 ? (double)*(const float*)p
                         : mapose_asm::half_to_double(*(const uint16_t*)p);
    }
    // np.isinf(a).all() for a 2-D float array (True when empty)
    static inline int mp_all_inf_2d(PyObject* o, int code) {
        PyArrayObject* a = (PyArrayObject*)o;
        const npy_intp n0 = PyArray_DIM(a, 0), n1 = PyArray_DIM(a, 1);
        const npy_intp s0 = PyArray_STRIDE(a, 0), s1 = PyArray_STRIDE(a, 1);
        const char* base = PyArray_BYTES(a);
        for (npy_intp i = 0; i < n0; ++i)
            for (npy_intp j = 0; j < n1; ++j)
                if (!std::isinf(mp_read(base + i * s0 + j * s1, code))) return 0;
        return 1;
    }
    static inline int mp_ndim(PyObject* o) { return PyArray_NDIM((PyArrayObject*)o); }
    static inline npy_intp mp_dim(PyObject* o, int k) { return PyArray_DIM((PyArrayObject*)o, k); }
    static inline npy_intp mp_stride(PyObject* o, int k) { return PyArray_STRIDE((PyArrayObject*)o, k); }
    static inline const char* mp_bytes(PyObject* o) { return PyArray_BYTES((PyArrayObject*)o); }
    // the start of an object and of its next cache line
    static inline void mp_prefetch_obj(const void* o) {
        MP_PREFETCH(o);
        MP_PREFETCH((const char*)o + 64);
    }
    // d[key] (borrowed) or NULL; a failing lookup (a key whose __eq__ raises) sets
    // *err and is cleared: the general path then repeats it and raises
    static inline PyObject* mp_dict_get(PyObject* d, PyObject* key, int* err) {
        PyObject* v = PyDict_GetItemWithError(d, key);
        if (v == nullptr && PyErr_Occurred()) { PyErr_Clear(); *err = 1; }
        return v;
    }

    // Key strings of the cost entries seen last, held (strong references) so that an
    // identity match is never a recycled address.
    struct MpKeys {
        PyObject* dist = nullptr;
        PyObject* method = nullptr;
        ~MpKeys() { Py_XDECREF(dist); Py_XDECREF(method); }
    };
    static inline int mp_match_key(PyObject* k, PyObject** cached, PyObject* want) {
        if (k == *cached) return 1;
        if (!PyUnicode_CheckExact(k)) return -1;  // a non-str key: general path
        if (PyUnicode_Compare(k, want) != 0) return 0;
        Py_INCREF(k);
        Py_XDECREF(*cached);
        *cached = k;
        return 1;
    }

    // Scratch of the fast path, kept across frames (no allocation per frame).
    struct MpScratch {
        std::vector<PyObject*> by_slot;       // per edge slot: its costs entry
        std::vector<PyObject*> dist, method;  // per edge slot: the entry's two arrays
        std::vector<int> todo;                // edge slots to read, in order
        std::vector<npy_intp> rows;           // per bodypart: rows to pack
    };

    // Stage 1 of a frame's costs: an exact dict with exact-int keys, walked once; each
    // edge slot's entry is recorded and its load started.  Returns 0 when the costs
    // need the general path.
    static int mp_costs_walk(PyObject* costs, const std::vector<int>& slot_of, int n_edges, MpScratch& S) {
        if (slot_of.empty() || !PyDict_CheckExact(costs)) return 0;
        S.by_slot.assign(size_t(n_edges), nullptr);
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(costs, &pos, &k, &v)) {
            if (!PyLong_CheckExact(k)) return 0;
            int overflow = 0;
            const long kv = PyLong_AsLongAndOverflow(k, &overflow);
            if (overflow == 0 && 0 <= kv && kv < long(slot_of.size()) && slot_of[size_t(kv)] >= 0) {
                S.by_slot[size_t(slot_of[size_t(kv)])] = v;
                MP_PREFETCH(v);
            }
        }
        return 1;
    }

    // The rest of a frame's costs after mp_costs_walk: entries that are exact dicts
    // holding 2-D float ndarrays of the right shapes.  Returns 1 when done, 0 when the
    // frame needs the general (Python-level) path, which then redoes it; what this wrote
    // for the frame is undone first.  With `warm`, the method arrays' data is loaded
    // too (the caller assembles the frame right after).
    static int mp_pack_costs(const int n_edges, const int* edge_s, const int* edge_t, const int* counts,
                             MpScratch& S, MpKeys& keys, PyObject* dist_str, PyObject* method_str,
                             mapose_asm::Batch& B, size_t f, std::vector<PyObject*>& refs, bool warm) {
        // stage 2: entries of edges with detections at both ends; start their key tables
        S.todo.clear();
        for (int e = 0; e < n_edges; ++e) {
            if (edge_s[e] < 0) continue;
            if (counts[edge_s[e]] == 0 || counts[edge_t[e]] == 0) continue;
            PyObject* entry = S.by_slot[size_t(e)];
            if (entry == nullptr) continue;
            if (!PyDict_CheckExact(entry)) return 0;
            mp_prefetch_obj(((PyDictObject*)entry)->ma_keys);
            S.todo.push_back(e);
        }
        // stage 3: each entry's two arrays (identity compares first: entries unpickled
        // from one file share their key strings); start loading the array objects
        if (S.dist.size() < size_t(n_edges)) { S.dist.resize(size_t(n_edges)); S.method.resize(size_t(n_edges)); }
        for (const int e : S.todo) {
            PyObject* entry = S.by_slot[size_t(e)];
            PyObject *dp = nullptr, *mp = nullptr, *k, *v;
            Py_ssize_t pos = 0;
            while (PyDict_Next(entry, &pos, &k, &v)) {
                if (k == keys.dist) dp = v;
                else if (k == keys.method) mp = v;
                else {
                    int r = mp_match_key(k, &keys.dist, dist_str);
                    if (r < 0) return 0;
                    if (r) dp = v;
                    else {
                        r = mp_match_key(k, &keys.method, method_str);
                        if (r < 0) return 0;
                        if (r) mp = v;
                    }
                }
                if (dp && mp) break;
            }
            if (!dp) return 0;
            MP_PREFETCH(dp);
            if (mp) MP_PREFETCH(mp);
            S.dist[size_t(e)] = dp;
            S.method[size_t(e)] = mp;
        }
        // stage 4: array headers read; start their shape buffers and data
        for (const int e : S.todo) {
            PyObject* dp = S.dist[size_t(e)];
            PyObject* mp = S.method[size_t(e)];
            if (mp_float_code(dp) < 0) return 0;
            MP_PREFETCH(PyArray_DIMS((PyArrayObject*)dp));
            MP_PREFETCH(PyArray_BYTES((PyArrayObject*)dp));
            if (mp && PyArray_Check(mp)) {
                MP_PREFETCH(PyArray_DIMS((PyArrayObject*)mp));
                if (warm) MP_PREFETCH(PyArray_BYTES((PyArrayObject*)mp));
            }
        }
        // stage 5: checks, then the slots
        const size_t n_refs = refs.size(), base = f * size_t(n_edges);
        auto undo = [&]() {
            for (size_t q = n_refs; q < refs.size(); ++q) Py_DECREF(refs[q]);
            refs.resize(n_refs);
            for (int e = 0; e < n_edges; ++e) B.has_cost[base + size_t(e)] = 0;
            return 0;
        };
        for (const int e : S.todo) {
            const npy_intp ns = counts[edge_s[e]], nt = counts[edge_t[e]];
            PyObject* dp = S.dist[size_t(e)];
            PyObject* mp = S.method[size_t(e)];
            const int dcode = mp_float_code(dp);
            if (PyArray_NDIM((PyArrayObject*)dp) != 2) return undo();
            if (mp_all_inf_2d(dp, dcode)) continue;
            if (!mp) return undo();
            const int code = mp_float_code(mp);
            if (code < 0) return undo();
            PyArrayObject* m = (PyArrayObject*)mp;
            if (PyArray_NDIM(m) != 2 || PyArray_DIM(m, 0) < ns || PyArray_DIM(m, 1) < nt) return undo();
            const size_t slot = base + size_t(e);
            const char* data = PyArray_BYTES(m);
            const npy_intp s0 = PyArray_STRIDE(m, 0);
            if (warm) {
                const npy_intp n_bytes = std::min<npy_intp>(ns * s0, 1024);
                for (npy_intp off = 64; off < n_bytes; off += 64) MP_PREFETCH(data + off);
            }
            B.has_cost[slot] = 1;
            B.dtype[slot] = (signed char)code;
            B.cost_ptr[slot] = data;
            B.cost_s0[slot] = s0;
            B.cost_s1[slot] = PyArray_STRIDE(m, 1);
            Py_INCREF(mp);
            refs.push_back(mp);
        }
        return 1;
    }

    // One frame's joints, the common case in C: "coordinates" a 1-tuple (or 1-list)
    // holding an exact list/tuple of (n, 2) float ndarrays, "confidence" an exact
    // list/tuple of (n, 1) or (n,) float ndarrays, no "identity".  In stages as the
    // costs (objects, then shapes and data, then rows).  Returns 1 when done, 0 when the
    // frame needs the general path (nothing written then).
    static int mp_pack_joints(PyObject* frame, PyObject* k_coords, PyObject* k_conf, PyObject* k_ident,
                              int n_keypoints, MpScratch& S, mapose_asm::Batch& B, int* counts) {
        int err = 0;
        PyObject* co = mp_dict_get(frame, k_coords, &err);
        PyObject* cf = mp_dict_get(frame, k_conf, &err);
        PyObject* id = mp_dict_get(frame, k_ident, &err);
        if (err || co == nullptr || cf == nullptr || (id != nullptr && id != Py_None)) return 0;
        if (!(PyTuple_CheckExact(co) || PyList_CheckExact(co)) || PySequence_Fast_GET_SIZE(co) < 1) return 0;
        PyObject* cl = PySequence_Fast_GET_ITEM(co, 0);
        if (!(PyTuple_CheckExact(cl) || PyList_CheckExact(cl))) return 0;
        if (!(PyTuple_CheckExact(cf) || PyList_CheckExact(cf))) return 0;
        const Py_ssize_t n_labels = std::min(PySequence_Fast_GET_SIZE(cl), PySequence_Fast_GET_SIZE(cf));
        if (n_labels > n_keypoints) return 0;
        PyObject** ci = PySequence_Fast_ITEMS(cl);
        PyObject** pi = PySequence_Fast_ITEMS(cf);
        for (Py_ssize_t i = 0; i < n_labels; ++i) { MP_PREFETCH(ci[i]); MP_PREFETCH(pi[i]); }
        for (Py_ssize_t i = 0; i < n_labels; ++i) {
            if (mp_float_code(ci[i]) < 0 || mp_float_code(pi[i]) < 0) return 0;
            MP_PREFETCH(PyArray_DIMS((PyArrayObject*)ci[i]));
            MP_PREFETCH(PyArray_BYTES((PyArrayObject*)ci[i]));
            MP_PREFETCH(PyArray_DIMS((PyArrayObject*)pi[i]));
            MP_PREFETCH(PyArray_BYTES((PyArrayObject*)pi[i]));
        }
        if (S.rows.size() < size_t(n_labels)) S.rows.resize(size_t(n_labels));
        for (Py_ssize_t i = 0; i < n_labels; ++i) {
            S.rows[size_t(i)] = 0;
            PyArrayObject* c = (PyArrayObject*)ci[i];
            if (PyArray_SIZE(c) == 0) continue;
            if (PyArray_NDIM(c) != 2 || PyArray_DIM(c, 1) != 2) return 0;
            const int code = mp_float_code(ci[i]);
            const char* base = PyArray_BYTES(c);
            const npy_intp n = PyArray_DIM(c, 0), s0 = PyArray_STRIDE(c, 0), s1 = PyArray_STRIDE(c, 1);
            // np.any(coords): NaN counts as non-zero, exact zeros do not
            bool nonzero = false;
            for (npy_intp r = 0; r < n && !nonzero; ++r)
                nonzero = mp_read(base + r * s0, code) != 0 || mp_read(base + r * s0 + s1, code) != 0;
            if (!nonzero) continue;
            PyArrayObject* p = (PyArrayObject*)pi[i];
            if (PyArray_NDIM(p) != 1 && !(PyArray_NDIM(p) == 2 && PyArray_DIM(p, 1) == 1)) return 0;
            S.rows[size_t(i)] = std::min(n, PyArray_DIM(p, 0));
        }
        // one resize per frame, then indexed writes: six push_backs per detection were
        // out-of-line calls with a capacity check each
        size_t at = B.x.size(), total = at;
        for (Py_ssize_t i = 0; i < n_labels; ++i) total += size_t(S.rows[size_t(i)]);
        B.x.resize(total); B.y.resize(total); B.conf.resize(total);
        B.label.resize(total); B.xdtype.resize(total); B.group.resize(total, -1);
        double* bx = B.x.data(); double* by = B.y.data(); double* bc = B.conf.data();
        int* bl = B.label.data(); signed char* bd = B.xdtype.data();
        for (Py_ssize_t i = 0; i < n_labels; ++i) {
            const npy_intp n = S.rows[size_t(i)];
            if (n == 0) continue;
            PyArrayObject* c = (PyArrayObject*)ci[i];
            PyArrayObject* p = (PyArrayObject*)pi[i];
            const int code = mp_float_code(ci[i]), pcode = mp_float_code(pi[i]);
            const char* cb = PyArray_BYTES(c);
            const char* pb = PyArray_BYTES(p);
            const npy_intp s0 = PyArray_STRIDE(c, 0), s1 = PyArray_STRIDE(c, 1), ps = PyArray_STRIDE(p, 0);
            for (npy_intp r = 0; r < n; ++r, ++at) {
                bx[at] = mp_read(cb + r * s0, code);
                by[at] = mp_read(cb + r * s0 + s1, code);
                bc[at] = mp_read(pb + r * ps, pcode);
                bl[at] = int(i);
                bd[at] = (signed char)code;
            }
            counts[i] = int(n);
        }
        return 1;
    }
    """
    cppclass MpKeys:
        pass
    cppclass MpScratch:
        pass
    PyObject* mp_dict_get(PyObject* d, PyObject* key, int* err)
    bint mp_costs_walk(PyObject* costs, const vector[int]& slot_of, int n_edges, MpScratch& S)
    bint mp_pack_costs(int n_edges, const int* edge_s, const int* edge_t, const int* counts, MpScratch& S,
                       MpKeys& keys, PyObject* dist_str, PyObject* method_str, Batch& B, size_t f,
                       vector[PyObject*]& refs, bint warm)
    bint mp_pack_joints(PyObject* frame, PyObject* k_coords, PyObject* k_conf, PyObject* k_ident,
                        int n_keypoints, MpScratch& S, Batch& B, int* counts)
    int mp_float_code(PyObject* o)
    bint mp_all_inf_2d(PyObject* o, int code)
    int mp_ndim(PyObject* o)
    Py_ssize_t mp_dim(PyObject* o, int k)
    Py_ssize_t mp_stride(PyObject* o, int k)
    const char* mp_bytes(PyObject* o)


cdef inline int _dtype_code(cnp.ndarray a):
    cdef int t = cnp.PyArray_TYPE(a)
    if not cnp.PyArray_ISNOTSWAPPED(a):
        return -1
    if t == cnp.NPY_DOUBLE:
        return 0
    if t == cnp.NPY_FLOAT:
        return 1
    if t == 23:  # NPY_HALF
        return 2
    return -1


cdef inline cnp.ndarray _as_float_array(obj):
    """The array itself when it is float16/32/64 in native order, else a float64 copy."""
    if cnp.PyArray_Check(obj) and _dtype_code(<cnp.ndarray>obj) >= 0:
        return <cnp.ndarray>obj
    return np.asarray(obj, dtype=np.float64)


cdef inline double _get2(cnp.ndarray a, int code, Py_ssize_t i, Py_ssize_t j):
    cdef char* p = <char*>cnp.PyArray_DATA(a) + i * cnp.PyArray_STRIDE(a, 0) + j * cnp.PyArray_STRIDE(a, 1)
    if code == 0:
        return (<double*>p)[0]
    if code == 1:
        return (<float*>p)[0]
    return half_to_double((<uint16_t*>p)[0])


cdef inline double _get1(cnp.ndarray a, int code, Py_ssize_t i):
    cdef char* p = <char*>cnp.PyArray_DATA(a) + i * cnp.PyArray_STRIDE(a, 0)
    if code == 0:
        return (<double*>p)[0]
    if code == 1:
        return (<float*>p)[0]
    return half_to_double((<uint16_t*>p)[0])


cdef class Packed:
    """Detections and costs of a sequence of frames in flat C++ buffers."""
    cdef Batch b
    cdef public list keys
    # the cost arrays the batch points into, kept alive here (strong references; a
    # C++ vector because a list append per cost array showed in profiles)
    cdef vector[PyObject*] refs

    def __cinit__(self):
        self.b.joint_off.clear()
        self.b.joint_off.push_back(0)

    def __dealloc__(self):
        self._release()

    cdef void _release(self):
        cdef size_t i
        for i in range(self.refs.size()):
            Py_XDECREF(self.refs[i])
        self.refs.clear()

    def drop_costs(self):
        """Release the cost arrays once assembled (joints stay, for building objects)."""
        cdef vector[const char*] empty
        self.b.cost_ptr.swap(empty)
        self.b.cost_s0.clear()
        self.b.cost_s1.clear()
        self._release()

    @property
    def n_frames(self):
        return self.b.joint_off.size() - 1

    def joints(self, Py_ssize_t f):
        """(x, y, confidence, label, group) arrays of frame ``f``'s joints, in idx order."""
        cdef int64_t lo = self.b.joint_off[f], hi = self.b.joint_off[f + 1]
        cdef Py_ssize_t n = hi - lo, k
        x = np.empty(n)
        y = np.empty(n)
        c = np.empty(n)
        lab = np.empty(n, dtype=np.int64)
        grp = np.empty(n, dtype=np.int64)
        cdef double[::1] xv = x, yv = y, cv = c
        cdef int64_t[::1] lv = lab, gv = grp
        for k in range(n):
            xv[k] = self.b.x[lo + k]
            yv[k] = self.b.y[lo + k]
            cv[k] = self.b.conf[lo + k]
            lv[k] = self.b.label[lo + k]
            gv[k] = self.b.group[lo + k]
        return x, y, c, lab, grp


cdef class _Packer:
    """Packs frames into a :class:`Packed` batch, a range at a time (see :func:`pack`)."""
    cdef Packed P
    cdef list keys, paf_keys
    cdef int n_keypoints
    cdef Py_ssize_t n_edges, n_frames
    cdef const int[::1] edge_s
    cdef const int[::1] edge_t
    cdef str method
    # slot of each edge id, when the ids are distinct small non-negative ints
    cdef vector[int] slot_of
    cdef vector[PyObject*] by_slot
    cdef vector[int] counts
    cdef MpKeys mkeys
    cdef MpScratch scratch
    cdef object k_coords, k_conf, k_ident, k_costs, dist_str

    def __cinit__(self, Py_ssize_t n_frames, list keys, int n_keypoints, list paf_keys,
                  const int[::1] edge_s, const int[::1] edge_t, str method):
        cdef Py_ssize_t k, n_edges = len(paf_keys)
        self.P = Packed()
        self.keys = keys
        self.paf_keys = paf_keys
        self.n_keypoints = n_keypoints
        self.n_edges = n_edges
        self.n_frames = n_frames
        self.edge_s = edge_s
        self.edge_t = edge_t
        self.method = method
        self.k_coords, self.k_conf, self.k_ident = "coordinates", "confidence", "identity"
        self.k_costs, self.dist_str = "costs", "distance"
        cdef Batch* B = &self.P.b
        B.n_edges = <int>n_edges
        self.P.keys = keys
        # per-edge slots are written in place (no growth); joint buffers are sized from
        # the first frame
        B.has_cost.assign(n_frames * n_edges, 0)
        B.dtype.assign(n_frames * n_edges, 0)
        B.cost_ptr.assign(n_frames * n_edges, NULL)
        B.cost_s0.assign(n_frames * n_edges, 0)
        B.cost_s1.assign(n_frames * n_edges, 0)
        B.joint_off.reserve(n_frames + 1)
        ids = [i for i in paf_keys if type(i) is int and 0 <= i < 1 << 16]
        if len(ids) == n_edges and len(set(ids)) == n_edges:
            self.slot_of.assign(max(ids) + 1 if ids else 0, -1)
            for k in range(n_edges):
                self.slot_of[<Py_ssize_t>paf_keys[k]] = <int>k

    cdef int pack_range(self, list frames, Py_ssize_t lo, Py_ssize_t hi, bint warm) except -1:
        """Frames ``frames[lo:hi]`` (positions ``lo..hi-1`` of the batch); ``warm``: load
        the cost data into cache too (the caller assembles them next)."""
        cdef Packed P = self.P
        cdef Batch* B = &P.b
        cdef list keys = self.keys, paf_keys = self.paf_keys
        cdef Py_ssize_t n_edges = self.n_edges, f, i, r, k, n, ns, nt, n_labels
        cdef int n_keypoints = self.n_keypoints
        cdef const int[::1] edge_s = self.edge_s
        cdef const int[::1] edge_t = self.edge_t
        cdef str method = self.method
        cdef int code, dcode, costs_state, err
        cdef cnp.ndarray c, p
        cdef bint nonzero, all_inf, joints_done
        cdef size_t base
        cdef Py_ssize_t pos, slot
        cdef PyObject* kobj
        cdef PyObject* vobj
        cdef PyObject* costs_obj
        # general path: key objects of the entries seen last (identity compares)
        cdef PyObject* dist_key = NULL
        cdef PyObject* method_key = NULL
        cdef object dist_key_ref = None, method_key_ref = None
        cdef PyObject* dp
        cdef PyObject* mp
        cdef long kv
        cdef int overflow
        cdef bint walked
        cdef const int* es = &edge_s[0] if n_edges else NULL
        cdef const int* et = &edge_t[0] if n_edges else NULL
        for f in range(lo, hi):
            if f == 1:
                base = B.x.size() * self.n_frames + 64
                B.x.reserve(base)
                B.y.reserve(base)
                B.conf.reserve(base)
                B.label.reserve(base)
                B.xdtype.reserve(base)
                B.group.reserve(base)
            frame = frames[f]
            self.counts.assign(n_keypoints, 0)
            # fast path (C): costs walked first, so that their loads overlap the joints'
            costs_state = 0  # 0: general path, 1: walked, 2: no costs
            joints_done = False
            if type(frame) is dict:
                err = 0
                costs_obj = mp_dict_get(<PyObject*>frame, <PyObject*>self.k_costs, &err)
                if err:
                    costs_state = 0
                elif costs_obj == NULL or costs_obj == <PyObject*>None:
                    costs_state = 2
                elif mp_costs_walk(costs_obj, self.slot_of, <int>n_edges, self.scratch):
                    costs_state = 1
                joints_done = mp_pack_joints(<PyObject*>frame, <PyObject*>self.k_coords, <PyObject*>self.k_conf,
                                             <PyObject*>self.k_ident, n_keypoints, self.scratch, B[0],
                                             self.counts.data())
            if not joints_done:
                self._joints_general(frame, f)
            B.joint_off.push_back(B.x.size())
            if costs_state == 2:
                continue
            if costs_state == 1 and mp_pack_costs(<int>n_edges, es, et, self.counts.data(), self.scratch,
                                                  self.mkeys, <PyObject*>self.dist_str, <PyObject*>method,
                                                  B[0], <size_t>f, P.refs, warm):
                continue
            costs = frame.get("costs")
            # The usual costs dict maps int edge ids to entries: one walk over its items
            # fills every slot, cheaper than a lookup per slot.  Any key that is not an
            # exact int (it could equal one) sends the frame down the lookup path.
            walked = False
            if self.slot_of.size() and type(costs) is dict:
                self.by_slot.assign(n_edges, NULL)
                walked = True
                pos = 0
                while PyDict_Next(costs, &pos, &kobj, &vobj):
                    if not PyLong_CheckExact(<object>kobj):
                        walked = False
                        break
                    kv = PyLong_AsLongAndOverflow(<object>kobj, &overflow)
                    if overflow == 0 and 0 <= kv < <long>self.slot_of.size() and self.slot_of[kv] >= 0:
                        self.by_slot[self.slot_of[kv]] = vobj
            for k in range(n_edges):
                if edge_s[k] < 0 or costs is None:
                    continue
                ns = self.counts[edge_s[k]]
                nt = self.counts[edge_t[k]]
                if ns == 0 or nt == 0:
                    continue
                key = paf_keys[k]
                if walked:
                    if self.by_slot[k] == NULL:
                        continue
                    entry = <object>self.by_slot[k]
                elif type(costs) is dict:  # one hash lookup, no exception
                    entry = (<dict>costs).get(key)
                    if entry is None:
                        continue
                else:
                    if key not in costs:
                        continue
                    entry = costs[key]
                # borrowed references into the entry (alive as long as the frames are)
                dp = NULL
                mp = NULL
                mobj = None
                dobj = None
                if type(entry) is dict:
                    # A _full.pickle's entries are small dicts whose key strings, once
                    # unpickled, are shared across frames but not interned: walking the
                    # items and comparing identities first beats two hashed lookups
                    pos = 0
                    while PyDict_Next(entry, &pos, &kobj, &vobj):
                        if kobj == dist_key:
                            dp = vobj
                        elif kobj == method_key:
                            mp = vobj
                        elif <object>kobj == "distance":
                            dist_key = kobj
                            dist_key_ref = <object>kobj  # keeps the address from being reused
                            dp = vobj
                        elif <object>kobj == method:
                            method_key = kobj
                            method_key_ref = <object>kobj
                            mp = vobj
                        if dp != NULL and mp != NULL:
                            break
                    if dp == NULL:
                        raise ValueError(f"frame {keys[f]!r}, edge {key!r}: the costs have no 'distance' entry.")
                else:
                    dobj = entry["distance"]
                    dp = <PyObject*>dobj
                dcode = mp_float_code(dp)
                if dcode >= 0 and mp_ndim(dp) == 2:
                    all_inf = mp_all_inf_2d(dp, dcode)
                else:
                    all_inf = bool(np.isinf(np.asarray(<object>dp, dtype=np.float64)).all())
                if all_inf:
                    continue
                if mp == NULL:
                    try:
                        mobj = entry[method]
                    except KeyError:
                        raise ValueError(
                            f"frame {keys[f]!r}, edge {key!r}: the costs have no {method!r} entry "
                            f"(keys: {sorted(entry)}); pass method= one of those."
                        ) from None
                    mp = <PyObject*>mobj
                code = mp_float_code(mp)
                if code < 0:  # not a float16/32/64 ndarray in native order: a float64 copy
                    mobj = np.asarray(<object>mp, dtype=np.float64)
                    mp = <PyObject*>mobj
                    code = 0
                if mp_ndim(mp) != 2 or mp_dim(mp, 0) < ns or mp_dim(mp, 1) < nt:
                    raise ValueError(
                        f"frame {keys[f]!r}, edge {key!r}: costs[{method!r}] has shape {(<object>mp).shape} but "
                        f"the edge's bodyparts have {ns} and {nt} detections; the cost matrix must "
                        f"be (n_source, n_target)."
                    )
                slot = f * n_edges + k
                B.has_cost[slot] = 1
                B.dtype[slot] = code
                B.cost_ptr[slot] = mp_bytes(mp)
                B.cost_s0[slot] = mp_stride(mp, 0)
                B.cost_s1[slot] = mp_stride(mp, 1)
                Py_INCREF(<object>mp)
                P.refs.push_back(mp)
        return 0

    cdef int _joints_general(self, frame, Py_ssize_t f) except -1:
        # any frame layout DLC accepts; errors name the frame and bodypart
        cdef Batch* B = &self.P.b
        cdef list keys = self.keys
        cdef Py_ssize_t i, r, n, n_labels
        cdef int code, dcode
        cdef cnp.ndarray c, p
        cdef bint nonzero
        try:
            coords_list = frame["coordinates"][0]
            conf_list = frame["confidence"]
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(
                f"frame {keys[f]!r}: expected a dict with 'coordinates' (a 1-tuple of per-bodypart "
                f"(n, 2) arrays) and 'confidence' (per-bodypart (n, 1) arrays), as in a DLC "
                f"_full.pickle; got {type(frame).__name__} ({exc!r})."
            ) from None
        ids_list = frame.get("identity")
        n_labels = min(len(coords_list), len(conf_list))
        if ids_list is not None:
            n_labels = min(n_labels, len(ids_list))
        if n_labels > self.n_keypoints:
            raise ValueError(
                f"frame {keys[f]!r} has detections for {n_labels} bodyparts but the metadata "
                f"lists {self.n_keypoints} ('all_joints_names'); fix the metadata or the frame."
            )
        for i in range(n_labels):
            c = _as_float_array(coords_list[i])
            if c.size == 0:
                continue
            if c.ndim != 2 or c.shape[1] != 2:
                raise ValueError(
                    f"frame {keys[f]!r}, bodypart {i}: coordinates must have shape (n, 2); "
                    f"got {(<object>c).shape}."
                )
            code = _dtype_code(c)
            n = c.shape[0]
            nonzero = False  # np.any(coords): NaN counts as non-zero, exact zeros do not
            for r in range(n):
                if _get2(c, code, r, 0) != 0 or _get2(c, code, r, 1) != 0:
                    nonzero = True
                    break
            if not nonzero:
                continue
            p = _as_float_array(conf_list[i])
            # (n, 1) arrays are read in place through their first stride (no view)
            if p.ndim != 1 and not (p.ndim == 2 and p.shape[1] == 1):
                raise ValueError(
                    f"frame {keys[f]!r}, bodypart {i}: confidence must have shape (n, 1) or (n,); "
                    f"got {(<object>p).shape}."
                )
            n = min(n, p.shape[0])
            groups = None
            if ids_list is not None:
                ids = np.asarray(ids_list[i])
                groups = ids.argmax(axis=1) if ids.size else np.zeros(0, dtype=np.int64)
                n = min(n, len(groups))
            dcode = _dtype_code(p)
            for r in range(n):
                B.x.push_back(_get2(c, code, r, 0))
                B.y.push_back(_get2(c, code, r, 1))
                B.conf.push_back(_get1(p, dcode, r))
                B.label.push_back(<int>i)
                B.xdtype.push_back(<signed char>code)
                B.group.push_back(-1 if groups is None else <int>groups[r])
            self.counts[i] = <int>n
        return 0


def pack(list frames, list keys, int n_keypoints, list paf_keys, const int[::1] edge_s,
         const int[::1] edge_t, str method):
    """Flatten DLC frame dicts into a :class:`Packed` batch.

    Parameters
    ----------
    frames : list of dict
        ``{"coordinates": (list of (n_k, 2) arrays,), "confidence": list of (n_k, 1),
        "costs": {edge: {"m1": (n_s, n_t), "distance": (n_s, n_t)}}, ["identity": ...]}``.
    keys : list
        Frame names, for error messages.
    paf_keys : list
        The ``costs`` key of each edge slot (``paf_inds`` values).
    edge_s, edge_t : int32 arrays of shape (n_edges,)
        Bodyparts of each edge slot (-1: never linked).
    """
    cdef _Packer packer = _Packer(len(frames), keys, n_keypoints, paf_keys, edge_s, edge_t, method)
    packer.P.refs.reserve(len(frames) * len(paf_keys))
    packer.pack_range(frames, 0, len(frames), False)
    return packer.P


cdef class LinkTree:
    """A frame's link vectors ``[xs, ys, xt, yt]`` with an exact nearest-neighbour index
    (what DLC keeps per frame as a ``scipy.spatial.cKDTree`` in ``Assembler._trees``).

    Built once by the kernel when a frame's links are stored (``window_size >= 1``) and
    reused by the following ``window_size`` frames; ``data`` and ``query`` follow
    cKDTree's names.
    """
    cdef TreePtr ptr

    @staticmethod
    def from_vectors(vectors):
        """A tree over ``vectors`` (array_like of shape (n, 4))."""
        arr = np.ascontiguousarray(vectors, dtype=np.float64)
        if arr.size == 0:
            arr = arr.reshape(0, 4)
        if arr.ndim != 2 or arr.shape[1] != 4:
            raise ValueError(
                f"link vectors must have shape (n_links, 4) ([xs, ys, xt, yt] per link); got {arr.shape}."
            )
        cdef LinkTree t = LinkTree.__new__(LinkTree)
        cdef const double[:, ::1] v = arr
        t.ptr = make_tree(&v[0, 0] if v.shape[0] else NULL, <size_t>v.shape[0])
        return t

    @property
    def n(self):
        return tree_size(self.ptr)

    @property
    def m(self):
        return 4

    def __len__(self):
        return tree_size(self.ptr)

    @property
    def data(self):
        """(n_links, 4) float64 copy of the link vectors, in link order."""
        cdef size_t n = tree_size(self.ptr), i
        out = np.empty((n, 4))
        cdef double[:, ::1] ov = out
        cdef const double* src = tree_data(self.ptr)
        for i in range(n * 4):
            ov[i // 4, i % 4] = src[i]
        return out

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    def __reduce__(self):
        return LinkTree.from_vectors, (self.data,)

    def __repr__(self):
        return f"<LinkTree of {len(self)} link vectors>"

    def query(self, x):
        """Nearest link vector of each query: ``(distance, index)`` like cKDTree.query(x).

        Parameters
        ----------
        x : array_like, shape (4,) or (n, 4)

        Returns
        -------
        d : float or ndarray of shape (n,)
            Euclidean distance (inf when no stored vector is finite).
        i : int or ndarray of shape (n,)
            Index of the nearest vector (the first on ties; ``n`` when none).
        """
        q = np.asarray(x, dtype=np.float64)
        single = q.ndim == 1
        q = np.ascontiguousarray(np.atleast_2d(q))
        if q.ndim != 2 or q.shape[1] != 4:
            raise ValueError(f"x must have shape (4,) or (n, 4); got {np.shape(x)}.")
        cdef const double[:, ::1] qv = q
        d = np.empty(q.shape[0])
        idx = np.empty(q.shape[0], dtype=np.int64)
        cdef double[::1] dv = d
        cdef int64_t[::1] iv = idx
        cdef long k
        cdef Py_ssize_t r
        for r in range(qv.shape[0]):
            dv[r] = tree_query(self.ptr, &qv[r, 0], &k)
            iv[r] = k
        if single:
            return float(d[0]), int(idx[0])
        return d, idx


cdef class Result:
    """Per-frame outputs of :func:`run`; accessors return NumPy arrays."""
    cdef vector[FrameOut] outs
    cdef public int n_multi, n_unique

    def __len__(self):
        return self.outs.size()

    def status(self):
        """int8 array: 1 where the frame has a list of assemblies (possibly empty)."""
        cdef Py_ssize_t f, n = self.outs.size()
        s = np.zeros(n, dtype=np.int8)
        cdef signed char[::1] sv = s
        for f in range(n):
            sv[f] = self.outs[f].has_assemblies
        return s

    def status_of(self, Py_ssize_t f):
        return bool(self.outs[f].has_assemblies)

    def counts(self):
        """Number of assemblies per frame (int64)."""
        cdef Py_ssize_t f, n = self.outs.size()
        s = np.zeros(n, dtype=np.int64)
        cdef int64_t[::1] sv = s
        for f in range(n):
            sv[f] = self.outs[f].assemblies.size()
        return s

    def has_unique(self):
        """bool array: True where the frame has unique-bodypart detections."""
        cdef Py_ssize_t f, n = self.outs.size()
        s = np.zeros(n, dtype=np.uint8)
        cdef unsigned char[::1] sv = s
        for f in range(n):
            sv[f] = self.outs[f].has_unique
        return s.view(bool)

    def unique(self, Py_ssize_t f):
        cdef FrameOut* o = &self.outs[f]
        if not o.has_unique:
            return None
        u = np.empty((self.n_unique, 3))
        cdef double[:, ::1] uv = u
        cdef Py_ssize_t i
        for i in range(self.n_unique * 3):
            uv[i // 3, i % 3] = o.unique[i]
        return u

    def data(self, Py_ssize_t f):
        """(n_assemblies, n_multi, 4) float64 array of frame ``f``."""
        cdef FrameOut* o = &self.outs[f]
        cdef Py_ssize_t na = o.assemblies.size(), q, i, sz = self.n_multi * 4
        d = np.empty((na, self.n_multi, 4))
        cdef double[:, :, ::1] dv = d
        for q in range(na):
            for i in range(sz):
                dv[q, i // 4, i % 4] = o.assemblies[q].data[i]
        return d

    def frame(self, Py_ssize_t f):
        """Everything about frame ``f``: (data, affinity sums, links, joints per assembly).

        ``links`` is a list (one per assembly) of (j1 idx, j2 idx, affinity) tuples in
        the order they were added; ``joints`` lists joint idx in insertion order.
        """
        cdef FrameOut* o = &self.outs[f]
        cdef Py_ssize_t q, na = o.assemblies.size()
        cdef AssemblyOut* a
        affs = []
        links = []
        joints = []
        for q in range(na):
            a = &o.assemblies[q]
            affs.append(a.affinity)
            links.append([(o.links[li].j1, o.links[li].j2, o.links[li].affinity) for li in a.links])
            joints.append([j for j in a.joints])
        return self.data(f), affs, links, joints

    def all_data(self):
        """(data of all assemblies concatenated (N, n_multi, 4), offsets (n_frames + 1,))."""
        cdef Py_ssize_t f, q, i, n = self.outs.size(), tot = 0, pos = 0, sz = self.n_multi * 4
        for f in range(n):
            tot += self.outs[f].assemblies.size()
        d = np.empty((tot, self.n_multi, 4))
        off = np.zeros(n + 1, dtype=np.int64)
        cdef double[:, :, ::1] dv = d
        cdef int64_t[::1] ov = off
        for f in range(n):
            for q in range(<Py_ssize_t>self.outs[f].assemblies.size()):
                for i in range(sz):
                    dv[pos, i // 4, i % 4] = self.outs[f].assemblies[q].data[i]
                pos += 1
            ov[f + 1] = pos
        return d, off

    def poses(self, int max_n):
        """(n_frames, max_n, n_multi, 5) array: x, y, confidence, group and the mean link
        affinity of each assembly, in assembly order; unfilled rows are -1 (the layout of
        DLC's PartAffinityFieldPredictor output)."""
        cdef Py_ssize_t f, q, r, n = self.outs.size(), nq
        out = np.full((n, max_n, self.n_multi, 5), -1.0)
        cdef double[:, :, :, ::1] ov = out
        cdef double mean
        cdef AssemblyOut* a
        for f in range(n):
            nq = min(<Py_ssize_t>self.outs[f].assemblies.size(), <Py_ssize_t>max_n)
            for q in range(nq):
                a = &self.outs[f].assemblies[q]
                mean = a.affinity / a.links.size() if a.links.size() else 0.0
                for r in range(self.n_multi):
                    ov[f, q, r, 0] = a.data[r * 4]
                    ov[f, q, r, 1] = a.data[r * 4 + 1]
                    ov[f, q, r, 2] = a.data[r * 4 + 2]
                    ov[f, q, r, 3] = a.data[r * 4 + 3]
                    ov[f, q, r, 4] = mean
        return out


cdef int _set_calib(Params* P, Calib* cal, int n_multi, calib_mean, calib_var, calib_inv_cov,
                    bint little) except -1:
    # P.calib = cal filled from the calibration arrays (NULL without them); the pointers
    # read the arrays' buffers, which the caller's arguments keep alive for the run
    P.calib = NULL
    if calib_mean is None:
        return 0
    cdef const double[::1] cal_mean = calib_mean
    cdef const double[::1] cal_var = calib_var
    cdef const double[:, ::1] cal_inv = calib_inv_cov
    cal.d = <int>cal_mean.shape[0]
    if (n_multi * (n_multi - 1) // 2 != cal.d or cal_var.shape[0] != cal.d
            or cal_inv.shape[0] != cal.d or cal_inv.shape[1] != cal.d or cal.d == 0):
        raise ValueError(
            f"calibration of dimension {cal.d} does not fit n_multi={n_multi} bodyparts "
            f"(expected {n_multi * (n_multi - 1) // 2} pairwise distances)"
        )
    cal.mean = &cal_mean[0]
    cal.var = &cal_var[0]
    cal.inv_cov = &cal_inv[0, 0]
    cal.little = little
    P.calib = cal
    return 0


cdef int _set_params(Params* P, Calib* cal, int n_multi, int n_keypoints, int max_n,
                     int min_n_links, int window_size, bint greedy, bint identity_only,
                     bint force_fusion, bint add_discarded, double pcutoff, double max_overlap,
                     double gamma, min_aff, const int[::1] edge_s, const int[::1] edge_t,
                     bint dup_edges, calib_mean, calib_var, calib_inv_cov,
                     bint calib_little) except -1:
    # the edge pointers read the caller's buffers, alive for the run like the arguments
    P.n_multi = n_multi
    P.n_keypoints = n_keypoints
    P.max_n = max_n
    P.min_n_links = min_n_links
    P.window_size = window_size
    P.greedy = greedy
    P.identity_only = identity_only
    P.force_fusion = force_fusion
    P.add_discarded = add_discarded
    P.pcutoff = pcutoff
    P.max_overlap = max_overlap
    P.gamma = gamma
    _set_calib(P, cal, n_multi, calib_mean, calib_var, calib_inv_cov, calib_little)
    cdef int i
    for i in range(3):
        P.min_aff[i] = min_aff[i]
    P.n_edges = <int>edge_s.shape[0]
    P.dup_edges = dup_edges
    P.edge_s = &edge_s[0] if edge_s.shape[0] else NULL
    P.edge_t = &edge_t[0] if edge_t.shape[0] else NULL
    return 0


def run(Packed packed, *, int n_multi, int n_keypoints, int max_n, int min_n_links,
        int window_size, bint greedy, bint identity_only, bint force_fusion,
        bint add_discarded, double pcutoff, double max_overlap, double gamma,
        min_aff, const int[::1] edge_s, const int[::1] edge_t,
        const int64_t[::1] frame_index, int n_threads, dict trees, bint dup_edges=True,
        bint _window_brute=False, calib_mean=None, calib_var=None, calib_inv_cov=None,
        bint calib_little=True):
    """Assemble every frame of ``packed`` (see :mod:`mapose.kernels.assembly`).

    ``trees`` maps frame index -> :class:`LinkTree` (or (n_links, 4) link vectors) of past
    frames; it is read and updated when ``window_size >= 1``.  ``_window_brute`` (test
    hook) computes the temporal weights by scanning every stored vector.

    ``calib_mean`` (d,), ``calib_var`` (d,) and ``calib_inv_cov`` (d, d), float64 with
    d = n_multi * (n_multi - 1) / 2 (the KDE's mean, covariance diagonal and inverse
    covariance), switch on DLC's calibrated assembly; ``calib_little``: the fills'
    ``nan_policy == "little"``.
    """
    cdef Params P
    cdef Result res = Result()
    cdef cmap[int64_t, TreePtr] tmap
    cdef cmap[int64_t, TreePtr].iterator tit
    cdef Py_ssize_t i
    cdef LinkTree lt
    cdef Calib cal
    _set_params(&P, &cal, n_multi, n_keypoints, max_n, min_n_links, window_size, greedy,
                identity_only, force_fusion, add_discarded, pcutoff, max_overlap, gamma, min_aff,
                edge_s, edge_t, dup_edges, calib_mean, calib_var, calib_inv_cov, calib_little)
    P.window_brute = _window_brute
    if frame_index.shape[0] != packed.n_frames:
        raise ValueError("frame_index must have one entry per packed frame")
    cdef int64_t lo_key = 0, hi_key = 0
    if window_size >= 1 and frame_index.shape[0]:
        # only the trees a frame of this batch can look back at; LinkTree values are
        # shared as they are (built once), arrays (n_links, 4) get a tree here
        lo_key = min(frame_index) - window_size
        hi_key = max(frame_index)
        for k, v in trees.items():
            if not lo_key <= k <= hi_key:
                continue
            if v is None:
                continue
            lt = v if isinstance(v, LinkTree) else LinkTree.from_vectors(v)
            tmap[<int64_t>k] = lt.ptr
    res.n_multi = n_multi
    res.n_unique = n_keypoints - n_multi
    cdef const int64_t* fi = &frame_index[0] if frame_index.shape[0] else NULL
    with nogil:
        run_batch(P, packed.b, fi, res.outs, n_threads, tmap)
    if window_size >= 1:
        # the trees the kernel kept: those a following call can need (the last
        # window_size frame indices); the caller bounds its dict (Assembler._trees)
        tit = tmap.begin()
        while tit != tmap.end():
            lt = LinkTree.__new__(LinkTree)
            lt.ptr = deref(tit).second
            trees[int(deref(tit).first)] = lt
            inc(tit)
    return res


def pack_run(list frames, list keys, int n_keypoints, list paf_keys, str method, *, int n_multi,
             int max_n, int min_n_links, bint greedy, bint identity_only, bint force_fusion,
             bint add_discarded, double pcutoff, double max_overlap, double gamma, min_aff,
             const int[::1] edge_s, const int[::1] edge_t, bint dup_edges=True, int chunk=4,
             calib_mean=None, calib_var=None, calib_inv_cov=None, bint calib_little=True):
    """:func:`pack` and :func:`run` in one pass on the calling thread, ``chunk`` frames at a
    time, without temporal coherence (``window_size`` 0): each chunk is assembled while its
    costs are still in cache (packing loads them), and its cost arrays are released right
    after.  Same results as ``run(pack(...))``; the ``calib_*`` arguments as in :func:`run`.

    Returns
    -------
    (Packed, Result)
        The joints of every frame (costs already released) and the per-frame outputs.
    """
    cdef Py_ssize_t n = len(frames), lo, hi, i
    cdef _Packer packer = _Packer(n, keys, n_keypoints, paf_keys, edge_s, edge_t, method)
    cdef Packed packed = packer.P
    cdef Result res = Result()
    cdef Params P
    cdef Calib cal
    _set_params(&P, &cal, n_multi, n_keypoints, max_n, min_n_links, 0, greedy, identity_only,
                force_fusion, add_discarded, pcutoff, max_overlap, gamma, min_aff, edge_s, edge_t,
                dup_edges, calib_mean, calib_var, calib_inv_cov, calib_little)
    if P.n_edges != len(paf_keys) or edge_t.shape[0] != edge_s.shape[0]:
        raise ValueError("edge_s and edge_t must have one entry per paf key")
    res.n_multi = n_multi
    res.n_unique = n_keypoints - n_multi
    res.outs.resize(n)
    chunk = max(1, chunk)
    cdef FrameAssembler* fa = new FrameAssembler(P)
    try:
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            packer.pack_range(frames, lo, hi, True)
            with nogil:
                run_frames(fa[0], packed.b, <size_t>lo, <size_t>hi, res.outs)
            packed._release()
    finally:
        del fa
    packed.drop_costs()
    return packed, res


cdef tuple _lsap_hook(const double[:, ::1] cost, bint through_view, bint try_dominant):
    # shared by the two test hooks below: output buffers, the nogil call, the status check
    cdef long nr = cost.shape[0], nc = cost.shape[1]
    cdef long k = min(nr, nc)
    rows = np.zeros(k, dtype=np.int64)
    cols = np.zeros(k, dtype=np.int64)
    cdef long[::1] r = rows
    cdef long[::1] c = cols
    cdef LsapWorkspace ws
    cdef int status = 0
    if k:
        with nogil:
            if through_view:
                status = solve_dense_view(ws, nr, nc, &cost[0, 0], &r[0], &c[0])
            else:
                status = ws.solve_max_unique_first(nr, nc, &cost[0, 0], &r[0], &c[0], try_dominant)
    if status != 0:
        what = "solver failed" if through_view else "cost must be finite"
        raise ValueError(f"{what} (solver status {status})")
    return rows, cols, ws.last_path


def _lsap_max_unique_first(const double[:, ::1] cost, bint try_dominant=True):
    """Test hook: the assembler's maximising assignment with its exact shortcuts.

    Parameters
    ----------
    cost : ndarray, shape (nr, nc), float64, C-contiguous, finite
    try_dominant : bool
        Try the row-maximum shortcut first (the assembler skips it when it has
        already checked it while reading the costs).

    Returns
    -------
    rows, cols : ndarray, shape (min(nr, nc),), int64
        As ``scipy.optimize.linear_sum_assignment(cost, maximize=True)``.
    path : int
        0: full solver, 1: dominant rows, 2: exhaustive search, 3: forced pairs.
    """
    return _lsap_hook(cost, False, try_dominant)


def _lsap_max_view(const double[:, ::1] cost):
    """Test hook: the assembler's per-edge assignment as extract_best_links runs it
    (``read_view`` into the solver's view with row statistics, then ``solve_max_view``).

    Parameters
    ----------
    cost : ndarray, shape (nr, nc), float64, C-contiguous
        Non-finite entries count as 0 (DLC maps NaN affinities to 0).

    Returns
    -------
    rows, cols : ndarray, shape (min(nr, nc),), int64
        As ``scipy.optimize.linear_sum_assignment(cost, maximize=True)``.
    path : int
        0: full solver, 1: dominant rows, 2: exhaustive search, 3: forced pairs.
    """
    return _lsap_hook(cost, True, True)


cdef extern from *:
    """
    // Test hooks for the calibrated kernel: one assembly's Mahalanobis distance and one
    // link's probability, through the very functions the per-frame assembler calls.
    static double mp_calib_mahalanobis(const mapose_asm::Params& P, const double* data, bool little) {
        mapose_asm::FrameAssembler fa(P);
        mapose_asm::Asm a;
        a.data.assign(data, data + size_t(P.n_multi) * 4);
        a.n_visible = 0;
        for (int r = 0; r < P.n_multi; ++r) a.n_visible += !std::isnan(data[size_t(r) * 4]);
        return mapose_asm::calib_mahalanobis(fa, a, little);
    }
    static double mp_calib_link_probability(const mapose_asm::Params& P, const double* xy, const int* label,
                                            const signed char* xdtype) {
        mapose_asm::FrameAssembler fa(P);
        const double x[2] = {xy[0], xy[2]}, y[2] = {xy[1], xy[3]}, conf[2] = {1.0, 1.0};
        const int group[2] = {-1, -1};
        mapose_asm::FrameIn in;
        in.n_joints = 2;
        in.x = x; in.y = y; in.conf = conf; in.label = label; in.group = group; in.xdtype = xdtype;
        fa.F = &in;
        return mapose_asm::calib_link_probability(fa, mapose_asm::LinkOut{0, 1, 1.0});
    }
    """
    double mp_calib_mahalanobis(const Params& P, const double* data, cbool little) nogil
    double mp_calib_link_probability(const Params& P, const double* xy, const int* label,
                                     const signed char* xdtype) nogil


cdef Calib _hook_calib(int n_multi, const double[::1] mean, const double[::1] var, const double[:, ::1] inv_cov):
    cdef Calib c
    c.d = <int>mean.shape[0]
    if c.d != n_multi * (n_multi - 1) // 2 or var.shape[0] != c.d or inv_cov.shape[0] != c.d or inv_cov.shape[1] != c.d:
        raise ValueError("calibration arrays do not fit n_multi")
    c.mean = &mean[0]
    c.var = &var[0]
    c.inv_cov = &inv_cov[0, 0]
    return c


def _calib_mahalanobis(const double[:, ::1] data, const double[::1] mean, const double[::1] var,
                       const double[:, ::1] inv_cov, bint little=True):
    """Test hook: the kernel's Mahalanobis distance of one assembly.

    Parameters
    ----------
    data : ndarray, shape (n_multi, 4), float64
        The assembly's rows (x, y, confidence, group; NaN x for missing bodyparts).
    mean, var : ndarray, shape (d,); inv_cov : ndarray, shape (d, d)
        From :func:`mapose.kernels.assembly.calibration_arrays`.
    """
    cdef Params P
    P.n_multi = <int>data.shape[0]
    if data.shape[1] != 4 or P.n_multi < 2:
        raise ValueError("data must have shape (n_multi >= 2, 4)")
    cdef Calib c = _hook_calib(P.n_multi, mean, var, inv_cov)
    P.calib = &c
    return mp_calib_mahalanobis(P, &data[0, 0], little)


def _calib_link_probability(const double[::1] xy, int label1, int label2, int n_multi, int coord_dtype,
                            const double[::1] mean, const double[::1] var, const double[:, ::1] inv_cov):
    """Test hook: the kernel's link probability of the link (x1, y1) -> (x2, y2) between
    bodyparts ``label1`` and ``label2``, coordinates of dtype code ``coord_dtype``
    (0: float64, 1: float32, 2: float16)."""
    cdef Params P
    P.n_multi = n_multi
    if xy.shape[0] != 4 or not (0 <= label1 < n_multi and 0 <= label2 < n_multi and label1 != label2):
        raise ValueError("xy must be (x1, y1, x2, y2) and the labels distinct multi-animal bodyparts")
    if not 0 <= coord_dtype <= 2:
        raise ValueError("coord_dtype must be 0, 1 or 2")
    cdef Calib c = _hook_calib(n_multi, mean, var, inv_cov)
    P.calib = &c
    cdef int labels[2]
    cdef signed char dts[2]
    labels[0] = label1
    labels[1] = label2
    dts[0] = <signed char>coord_dtype
    dts[1] = <signed char>coord_dtype
    return mp_calib_link_probability(P, &xy[0], labels, dts)
