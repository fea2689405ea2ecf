"""The emulated kernels behind other software's system calls.

:mod:`futex.integrations.qiling`: real Linux binaries under the Qiling emulator get
:mod:`futex.linux`'s futex (``pip install 'futex[qiling]'``).
"""
