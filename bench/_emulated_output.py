"""The report of ``bench_emulated.py``: its tables and its key ratios.

Both read the result dictionary ``main`` builds (the JSON the run writes), section by
section in the order of the run; nothing here measures.  The tables' notes say how each
figure was taken, with the sizes from the run's :class:`Config`.
"""

from __future__ import annotations

from typing import Any

from _emulated_common import Config
from _report import Table, ns, ratio

# -- output ----------------------------------------------------------------------------------


def build_tables(res: dict[str, Any], cfg: Config) -> list[Table]:
    tables: list[Table] = []
    t1 = Table(
        "1. Cost per call: emulated (Task.syscall_futex) vs real (ctypes host futex)",
        [
            "call",
            "emulated med",
            "emulated min",
            "real med",
            "real min",
            "emu/real",
            "emu/real of mins",
        ],
        note=f"{cfg.call_n:,} calls per sample, {cfg.repeats} samples, interleaved; emu/real "
        "is the median of the per-round ratios. Real = hostfutex.host_futex: ctypes "
        "marshalling + the syscall (the ENOSYS row is that floor).",
    )
    for r in res["call_cost"]:
        e, h = r["emulated"], r["real"]
        t1.rows.append(
            [
                r["call"],
                ns(e["median_ns"]) if e else "-",
                ns(e["min_ns"]) if e else "-",
                ns(h["median_ns"]) if h else "-",
                ns(h["min_ns"]) if h else "-",
                ratio(r["ratio"]),
                ratio(r["ratio_of_mins"]),
            ]
        )
    tables.append(t1)

    t2 = Table(
        "2. wake(1) from a queue of N waiters on one word (per wake)",
        ["layer", "N", "queue during batch", "median", "min", "vs N=" + f"{cfg.wake_sizes[0]:,}"],
        note=f"Park N+{cfg.wake_reps:,}, time {cfg.wake_reps:,} wakes, re-park (untimed); "
        f"{cfg.repeats} samples. syscall: waiters are tasks blocked via syscall_futex_nb "
        "(PendingWait), woken by Task.syscall_futex(FUTEX_WAKE_PRIVATE, 1). core: bare "
        "Waiters via FutexManager.wait_prepare, woken by FutexManager.wake.",
    )
    first: dict[str, float] = {}
    for r in res["wake_queue"]:
        med = r["per_wake"]["median_ns"]
        first.setdefault(r["layer"], med)
        t2.rows.append(
            [
                r["layer"],
                f"{r['n']:,}",
                r["queue_during_batch"],
                ns(med),
                ns(r["per_wake"]["min_ns"]),
                ratio(med / first[r["layer"]]),
            ]
        )
    tables.append(t2)

    t3 = Table(
        "3. FUTEX_CMP_REQUEUE_PRIVATE moving k waiters (nr_wake 0)",
        ["k", "calls/sample", "per call med", "per call min", "per waiter med", "per waiter min"],
        note="Waiters: tasks blocked via syscall_futex_nb; each call moves all k between "
        "two words (A->B, B->A).",
    )
    for r in res["requeue"]:
        t3.rows.append(
            [
                f"{r['k']:,}",
                f"{r['calls_per_sample']:,}",
                ns(r["per_call"]["median_ns"]),
                ns(r["per_call"]["min_ns"]),
                ns(r["per_waiter_median_ns"]),
                ns(r["per_waiter_min_ns"]),
            ]
        )
    tables.append(t3)

    t4 = Table(
        f"4. Call cost with {cfg.unrelated:,} waiters on OTHER words vs none (goal <= 1.2x)",
        [
            "unrelated waiters",
            "call",
            "none med",
            "loaded med",
            "ratio",
            "ratio of mins",
            "buckets used / busiest",
            "goal",
        ],
        note="Waiters parked via syscall_futex_nb (one task each); the empty and the loaded "
        "process are sampled interleaved and the ratio is the median of the per-round "
        "ratios; the measured word is the same address in both.",
    )
    for r in res["unrelated"]:
        t4.rows.append(
            [
                r["scenario"],
                r["call"],
                ns(r["none"]["median_ns"]),
                ns(r["loaded"]["median_ns"]),
                ratio(r["ratio"]),
                ratio(r["ratio_of_mins"]),
                f"{r['buckets_used']:,} / {r['busiest_bucket']:,}",
                "ok" if r["ratio"] <= 1.2 else "OVER",
            ]
        )
    tables.append(t4)

    t5 = Table(
        "5. Memory per queued waiter (tracemalloc)",
        ["layer", "words", "waiters", "bytes/waiter", "counts"],
        note="Bytes requested from Python's allocators (no arena slack); tasks exist before "
        "the measurement, except in the Task reference row.",
    )
    for r in res["memory"]:
        t5.rows.append(
            [r["layer"], r["words"], f"{r['n']:,}", f"{r['bytes_per_waiter']:,.0f}", r["counts"]]
        )
    tables.append(t5)

    if res["memory_breakdown"]:
        t6 = Table(
            "5b. Where a syscall-layer waiter's bytes go (one word)",
            ["allocation site", "bytes/waiter", "blocks/waiter"],
        )
        for r in res["memory_breakdown"]:
            t6.rows.append(
                [r["site"], f"{r['bytes_per_waiter']:,.0f}", f"{r['blocks_per_waiter']:.2f}"]
            )
        tables.append(t6)

    t7 = Table(
        "6a. PI futexes, uncontended: emulated (Task.syscall_futex) vs real (host futex)",
        list(t1.columns),
        note=f"{cfg.call_n:,} calls (or pairs) per sample, {cfg.repeats} samples, interleaved. "
        "Every call goes through the kernel (no user-space CAS fast path). Real: a private "
        "anonymous page, the calling thread's own tid in the word; the LOCK_PI / TRYLOCK_PI "
        "/ UNLOCK_PI rows use a batch of distinct words, reset between samples (untimed). "
        "EWOULDBLOCK row: the word is held by another live thread (host) / task (emulated).",
    )
    for r in res["pi_uncontended"]:
        e, h = r["emulated"], r["real"]
        t7.rows.append(
            [
                r["call"],
                ns(e["median_ns"]),
                ns(e["min_ns"]),
                ns(h["median_ns"]) if h else "-",
                ns(h["min_ns"]) if h else "-",
                ratio(r["ratio"]),
                ratio(r["ratio_of_mins"]),
            ]
        )
    tables.append(t7)

    pp = res["pi_pingpong"]
    sw = pp["context_switches_per_round_trip"]
    yl = pp["yields_per_round_trip"]
    where = f"both on CPU {pp['pinned_cpu']}" if pp["pinned_cpu"] is not None else "unpinned"
    t8 = Table(
        "6b. PI hand-off: UNLOCK_PI to a thread blocked in LOCK_PI, two-thread ping-pong",
        [*t1.columns, "switches | yields per RT, emu / real"],
        note=f"Two threads ({where}) bounce one PI word, {pp['round_trips_per_sample']:,} "
        f"round trips (RT) per sample, {cfg.repeats} samples, emulated and real interleaved. "
        "A RT: the timing thread's UNLOCK_PI hands the word to the helper blocked in "
        "LOCK_PI, its own LOCK_PI then blocks until the helper's UNLOCK_PI hands it back: "
        "2 hand-offs, each waking a sleeping thread. Real: host_futex (GIL dropped) for "
        "LOCK_PI, with a 10 s absolute timeout, and the probe; UNLOCK_PI with the GIL held "
        "(ctypes.PyDLL), as the emulated one is. Emulated: Task.syscall_futex, the thread "
        "parked on a lock. Before each UNLOCK_PI a thread probes with FUTEX_WAKE_PRIVATE "
        "(EINVAL iff a PI waiter is queued) and sched_yield()s until the other thread is "
        "queued, so every unlock is a hand-off (emulated LOCK_PIs that queued per RT, "
        f"exact: {pp['emulated_lock_pi_queued_per_round_trip']:.2f}); the probe row is "
        "its cost per call, and the net row subtracts 2 probes from each RT sample. "
        "Switches: voluntary + involuntary context switches of the process per RT (GIL "
        "hand-overs included). On-CPU check: the process's CPU time (the threads take "
        "turns on one CPU). Cooperative rows (emulated only): "
        f"{res['pi_cooperative'][0]['ops_per_sample']:,} words each held by one task with "
        "another parked on it via syscall_futex_nb (PendingWait); the timed UNLOCK_PI "
        "hands each word over (the waiter's PendingWait settles in the unlocker's thread); "
        "re-park = the old holder's LOCK_PI returning a PendingWait.",
    )

    def cells(e: dict[str, Any], r: dict[str, Any] | None) -> list[str]:
        return [
            ns(e["median_ns"]),
            ns(e["min_ns"]),
            ns(r["median_ns"]) if r else "-",
            ns(r["min_ns"]) if r else "-",
        ]

    t8.rows.append(
        [
            "round trip (2 hand-offs + 2 probes)",
            *cells(pp["emulated"], pp["real"]),
            ratio(pp["ratio"]),
            ratio(pp["ratio_of_mins"]),
            f"{sw.get('emu', 0):.1f} | {yl.get('emu', 0):.2f} / "
            + (f"{sw['real']:.1f} | {yl['real']:.2f}" if "real" in sw else "-"),
        ]
    )
    pr = pp["probe"]
    t8.rows.append(
        [
            "probe: FUTEX_WAKE_PRIVATE -> EINVAL (PI waiter queued)",
            *cells(pr["emulated"], pr["real"]),
            ratio(pr["ratio"]),
            ratio(pr["ratio_of_mins"]),
            "-",
        ]
    )
    net = pp["net_of_probes"]
    t8.rows.append(
        [
            "round trip net of its 2 probes",
            ns(net["emulated_median_ns"]),
            ns(net["emulated_min_ns"]),
            ns(net["real_median_ns"]),
            ns(net["real_min_ns"]),
            ratio(net["ratio"]),
            ratio(net["ratio_of_mins"]),
            "-",
        ]
    )
    for r in res["pi_cooperative"]:
        e = r["emulated"]
        t8.rows.append(
            [
                "cooperative: " + r["case"],
                ns(e["median_ns"]),
                ns(e["min_ns"]),
                "-",
                "-",
                "-",
                "-",
                "-",
            ]
        )
    tables.append(t8)
    return tables


def key_ratios(res: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    short = {
        "WAKE_PRIVATE, no waiters": "WAKE_PRIVATE (no waiters)",
        "WAIT_PRIVATE -> EAGAIN": "WAIT_PRIVATE (EAGAIN)",
        "WAKE shared, MAP_PRIVATE page": "WAKE shared, MAP_PRIVATE (no waiters)",
        "WAIT shared -> EAGAIN, MAP_PRIVATE page": "WAIT shared, MAP_PRIVATE (EAGAIN)",
        "WAKE shared, MAP_SHARED page": "WAKE shared, MAP_SHARED (no waiters)",
        "WAIT shared -> EAGAIN, MAP_SHARED page": "WAIT shared, MAP_SHARED (EAGAIN)",
    }
    for r in res["call_cost"]:
        if r["call"] in short and r["ratio"] is not None:
            what = short[r["call"]]
            out.append((f"emulated / real, {what}", ratio(r["ratio"])))
    for layer in ("syscall", "core"):
        rows = [r for r in res["wake_queue"] if r["layer"] == layer]
        if len(rows) >= 2:
            lo, hi = rows[0], rows[-1]
            out.append(
                (
                    f"wake(1) from {hi['n']:,} / from {lo['n']:,} waiters ({layer} layer)",
                    ratio(hi["per_wake"]["median_ns"] / lo["per_wake"]["median_ns"]),
                )
            )
    if res["requeue"]:
        big = res["requeue"][-1]
        out.append(
            (f"CMP_REQUEUE per waiter moved (k={big['k']:,})", ns(big["per_waiter_median_ns"]))
        )
    for r in res["unrelated"]:
        out.append(
            (
                f"{r['call']} with {r['unrelated_waiters']:,} unrelated waiters / none "
                f"[{r['scenario']}]",
                ratio(r["ratio"]),
            )
        )
    if res["unrelated"]:
        worst = max(res["unrelated"], key=lambda r: r["ratio"])
        verdict = "ok" if worst["ratio"] <= 1.2 else "OVER"
        out.append(
            (
                f"call cost with {worst['unrelated_waiters']:,} unrelated waiters / none, worst "
                f"case ({worst['call']}, {worst['scenario']})",
                f"{ratio(worst['ratio'])} (goal <= 1.2x: {verdict})",
            )
        )
    for r in res["memory"]:
        if r["words"] == "one word":
            out.append((f"bytes per queued waiter ({r['layer']})", f"{r['bytes_per_waiter']:,.0f}"))
    pi_short = {
        "pair": "emulated LOCK_PI+UNLOCK_PI (uncontended) / real",
        "try pair": "emulated TRYLOCK_PI+UNLOCK_PI (uncontended) / real",
        "held": "emulated TRYLOCK_PI on a held word (EWOULDBLOCK) / real",
    }
    for r in res.get("pi_uncontended", []):
        if r["kind"] in pi_short and r["ratio"] is not None:
            out.append((pi_short[r["kind"]], ratio(r["ratio"])))
    for r in res.get("pi_cooperative", []):
        if r["kind"] == "handoff":
            out.append(
                ("emulated UNLOCK_PI hand-off to a parked waiter", ns(r["emulated"]["median_ns"]))
            )
    pp = res.get("pi_pingpong")
    if pp and pp["ratio"] is not None:
        net = pp["net_of_probes"]
        out.append(
            (
                "PI hand-off round trip emulated / real",
                f"{ratio(pp['ratio'])} ({ns(pp['emulated']['median_ns'])} vs "
                f"{ns(pp['real']['median_ns'])}; net of the probes "
                f"{ratio(net['ratio'])})",
            )
        )
    return out
