"""The demo behind ``python -m futex demo``: real threads synchronized by nothing but an
emulated kernel's futexes, checked, and told.

================================  ==========================================================
module                            what it holds
================================  ==========================================================
:mod:`futex.demo.workload`        the producer/consumer workload: :class:`DemoConfig`,
                                  :func:`run_demo`, its checks, the kernels by name
:mod:`futex.demo.sync`            the futex mutex, condition variable and ring, written once
                                  for every kernel
:mod:`futex.demo.kernels`         the :class:`FutexOps` adapter's base class and Linux's
:mod:`futex.demo.zircon`          Zircon's adapter: ownership and inherited priority
:mod:`futex.demo.liteos`          LiteOS-A's adapter: the 80-bucket table
:mod:`futex.demo.robust_mutex`    glibc's robust mutex and robust list over the emulated
                                  futex(2) (the tests use it too)
:mod:`futex.demo.robust`          the robust-futex scenario: owners exit holding robust
                                  mutexes, their waiters recover them
:mod:`futex.demo.robust_report`   its numbered narrative and checks
:mod:`futex.demo.display`         plain lines or rich's live display (rich is optional: the
                                  ``demo`` extra)
================================  ==========================================================

The command line is :mod:`futex.cli`.  This package face imports nothing: each name is
imported from the module that defines it, and importing one module (the tests import
:mod:`futex.demo.robust_mutex`) does not import the others or rich.
"""
