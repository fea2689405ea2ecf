#!/usr/bin/env python3
"""Benchmark of the emulated futex kernel (``futex.linux`` over ``futex.kernel``).

Run from the repository root::

    python bench/bench_emulated.py            # full run, under a minute on an idle machine
    python bench/bench_emulated.py --quick    # ~20 s
    python bench/bench_emulated.py --plain --json figures.json
    # --repeats N: samples per figure; --gc: keep the cyclic GC on while timing

What it measures, all in one run (every ratio is against a baseline measured in the
same run, interleaved with it where the two can coexist):

1. the cost per call of FUTEX_WAKE with no waiters and of FUTEX_WAIT returning EAGAIN
   (private, and shared on MAP_PRIVATE / MAP_SHARED pages) through
   ``Task.syscall_futex``, against the same calls on the host kernel through ctypes;
2. wake(1) from a queue of N waiters on one address (per wake, over a batch), through
   the syscall layer (tasks parked with ``syscall_futex_nb``) and the core layer
   (``Waiter`` + ``FutexManager.wait_prepare``);
3. FUTEX_CMP_REQUEUE of k waiters, per call and per waiter moved;
4. the cost of a WAKE / WAIT-EAGAIN call with 100,000 waiters parked on *other*
   addresses against none (the per-key queues should keep it flat);
5. bytes per queued waiter (tracemalloc), core and syscall layers;
6. PI futexes: uncontended FUTEX_LOCK_PI / TRYLOCK_PI / UNLOCK_PI through the kernel
   (emulated vs host, with the real thread's own tid in the host's word); UNLOCK_PI handing
   the lock to a waiter parked cooperatively (``syscall_futex_nb``, emulated only); and a
   two-thread PI ping-pong (one thread blocked in LOCK_PI, the other's UNLOCK_PI hands the
   lock over, roles swap) on the host and on the emulated kernel, per round trip.

Timing: ``time.perf_counter_ns`` around a batch of calls, divided by the batch size;
each figure is sampled several times after a warm-up, and the median (and min) per call
is reported.  Figures that are compared are sampled round-robin and their ratio is the
median of the per-round ratios.  A sample during which the thread was descheduled
(thread CPU time < 90% of wall time: the machine is shared) is retried.  The cyclic GC
is disabled inside timed regions, as ``timeit`` does.  The PI ping-pong's two threads are
pinned to one CPU and take turns on it, so there the share is of the process's CPU time.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from _emulated_common import FULL, QUICK, Config, collect
from _emulated_memory import bench_memory
from _emulated_output import build_tables, key_ratios
from _emulated_pi import bench_pi_uncontended
from _emulated_pingpong import bench_pi_pingpong
from _emulated_waitwake import bench_call_cost, bench_requeue, bench_unrelated, bench_wake_queue
from _host import hostfutex as _hostfutex
from _report import emit, parse_args
from _timing import SAMPLING, end_meta, log, start_meta, status_line

from futex.kernel import ManualClock
from futex.linux import LinuxKernel

# -- main ------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__, 20, argv)
    SAMPLING.gc_off = not args.gc
    cfg = QUICK if args.quick else FULL
    if args.repeats:
        cfg = Config(**{**cfg.__dict__, "repeats": args.repeats})

    probe = LinuxKernel(clock=ManualClock()).new_process().futex
    meta = start_meta(
        cfg.quick,
        cfg.repeats,
        buckets_per_table=probe.private.size,
        queue_order=probe.order.name,
        host_futex=_hostfutex.available(),
    )
    log(f"futex emulated-kernel benchmark ({meta['mode']}), Python {meta['python']}")
    res: dict[str, Any] = {"meta": meta}
    res["call_cost"] = bench_call_cost(cfg)
    collect()
    res["wake_queue"] = bench_wake_queue(cfg)
    collect()
    res["requeue"] = bench_requeue(cfg)
    collect()
    res["unrelated"] = bench_unrelated(cfg)
    collect()
    res["memory"], res["memory_breakdown"] = bench_memory(cfg)
    collect()
    res["pi_uncontended"], res["pi_cooperative"] = bench_pi_uncontended(cfg)
    collect()
    res["pi_pingpong"] = bench_pi_pingpong(cfg)
    ratios = key_ratios(res)
    res["key_ratios"] = dict(ratios)
    end_meta(meta)

    header = (
        f"futex emulated kernel — Python {meta['python']} on {meta['platform']}, "
        f"{meta['cpus']} CPUs, {meta['buckets_per_table']} buckets/table, "
        f"{meta['mode']} run, {cfg.repeats} samples per figure (median, min), "
        f"GC {'off' if SAMPLING.gc_off else 'on'} while timing"
    )
    emit(args, [header, status_line(meta)], build_tables(res, cfg), ratios, res, 140)
    if args.json:
        log(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
