# Shared declaration of the header-only assignment solver; cimport from any family:
#     from lsap cimport lsap_solve
cdef extern from "lsap.h" namespace "mapose" nogil:
    int lsap_solve(long nr, long nc, const double* cost, bint maximize,
                   long* out_rows, long* out_cols)
