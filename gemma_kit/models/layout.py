"""Keras-hub's projection kernels as plain [out, in] matrices: the row layout of
Hugging Face, llama.cpp and TFLite's FULLY_CONNECTED."""

import numpy as np

from gemma_kit.errors import GemmaKitError


def matrix_form(equation):
    """For an EinsumDense equation "x,kernel->out" whose input ends in the contracted
    axes and whose output is the input's other axes then the kernel's free ones:
    (the kernel axis order that lays it out as [free (in output order), contracted],
    the number of free axes). Gemma's projections are all of this form."""
    operands, out = equation.split("->")
    x, kernel = operands.split(",")
    contracted = [c for c in x if c in kernel]
    batch = [c for c in x if c not in kernel]
    free = [c for c in out if c in kernel]
    if x != "".join(batch + contracted) or out != "".join(batch + free) or len(free) + len(contracted) != len(kernel):
        raise GemmaKitError(f"einsum {equation!r} is not a matmul over the input's last axes")
    return [kernel.index(c) for c in free + contracted], len(free)


def as_matrix(kernel, order, rows):
    """A kernel as [out, in]: its free axes (in output order), then its contracted ones."""
    return np.transpose(np.asarray(kernel), order).reshape(rows, -1)
