# Fused floating type shared by the kernels: float32 network outputs stay float32.
ctypedef fused floating:
    float
    double
