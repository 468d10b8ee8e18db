"""Build script for the one optional C extension; all metadata lives in pyproject.toml.

``aiolightning._md5mb`` (multi-buffer MD5, AVX-512) is optional: if no C compiler is
available the install goes on without it and uploads check their parts with hashlib.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "aiolightning._md5mb",
            sources=["aiolightning/_md5mb.c"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
