"""Tests of futex.sync: cross-process robust synchronization primitives in shared memory."""
