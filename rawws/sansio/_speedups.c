/*
 * rawws's one optional C function: RFC 6455 §5.3 masking, identical to the pure-Python
 * reference rawws.sansio.mask.apply_mask_python (a property test pins them together).
 *
 * "Octet i of the transformed data is the XOR of octet i of the original data with octet at
 * index i modulo 4 of the masking key." The key repeated twice makes a 64-bit word, XORed
 * into the data 32 bytes a step, then 8, through memcpy (no alignment assumed; compilers make
 * them plain, vectorized, loads and stores), then the last bytes one by one. Built when a compiler is there (setup.py, optional); never
 * required. RAWWS_PURE_PYTHON=1 keeps it unused.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static PyObject *
apply_mask(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, key;
    PyObject *result = NULL;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "apply_mask(data, masking_key) takes 2 arguments");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &key, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    if (key.len != 4) {
        PyErr_SetString(PyExc_ValueError, "the masking key must be 4 bytes long");
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result == NULL) {
        goto done;
    }

    const unsigned char *in = (const unsigned char *)data.buf;
    const unsigned char *k = (const unsigned char *)key.buf;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    Py_ssize_t n = data.len, i = 0;
    uint64_t mask8;
    unsigned char twice[8];

    memcpy(twice, k, 4);
    memcpy(twice + 4, k, 4);
    memcpy(&mask8, twice, 8);
    for (; i + 32 <= n; i += 32) {  /* four words a step: compilers vectorize it */
        uint64_t w[4];
        memcpy(w, in + i, 32);
        w[0] ^= mask8;
        w[1] ^= mask8;
        w[2] ^= mask8;
        w[3] ^= mask8;
        memcpy(out + i, w, 32);
    }
    for (; i + 8 <= n; i += 8) {  /* i stays a multiple of 4: the key lines up */
        uint64_t word;
        memcpy(&word, in + i, 8);
        word ^= mask8;
        memcpy(out + i, &word, 8);
    }
    for (; i < n; i++) {
        out[i] = in[i] ^ k[i & 3];
    }

done:
    PyBuffer_Release(&key);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL,
     "apply_mask(data, masking_key) -> bytes: data XORed with the repeated 4-byte key."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "rawws.sansio._speedups",
    "The optional C accelerator of rawws: masking only (RFC 6455 §5.3).", -1, speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&speedups_module);
}
