"""The differential harness: the emulated futex(2) and futex2 calls against the host kernel
(Linux, x86-64), over the same mappings at the same addresses.  One module per concern:

The layout both sides share
    ``layout``        the pages (protections, contents, timespec slots), PI words
    ``host_layout``   the layout reserved on the host, reset, read and written
    ``emulated``      the same layout on a fresh emulated kernel; ``Emulated.fresh``

The host side
    ``host``          raw system calls on the host (``futex.native``'s raw entries)
    ``watchdog``      ends a host call that blocked
    ``peer``          the peer thread (PI words may name it) and its jobs
    ``proc``          what ``/proc`` shows: whether a task sleeps in a call
    ``oracle``        the host's answers, under the watchdog (``BLOCKED``)

Steps, generation, reporting
    ``steps``         the symbolic steps (``Store``, ``Call``, ``Sys2``) and ``Symbols``
    ``gen``           generators that are Hypothesis strategies and seeded ``random`` alike
    ``strategies``    what registers and words are drawn from
    ``strategies_calls``, ``strategies_futex2``   the futex(2) and futex2 calls, chunks
    ``sequences``     the sequences, and the generated runs (``BULK``, ``generated``)
    ``mismatch``      a disagreement (``Mismatch``, ``ScenarioMismatch``), ``shrink``

The single-task differ
    ``differ``        ``Differ``: a run, the memory compared, each call to its part
    ``context``       what the parts share (``Context``) and the ``Tally`` of the runs
    ``futex_calls``   futex(2) calls, a blocked wait proved on the host and ended
    ``pi_calls``      PI lock calls: whether the host may run one, a blocked lock
    ``futex2_calls``  futex2 calls
    ``peer_ending``   a blocked call ended by the peer's calls
    ``waits``         deadlines of a blocked emulated wait, and ending it
    ``cases``, ``cases_plain``, ``cases_pi``, ``cases_requeue_pi``   the explicit cases

Several tasks, fork
    ``workers``       host threads that make calls on request
    ``tasks``         ``TaskDiffer``: threads beside emulated tasks on the same words
    ``scenarios``     the scenario tests' vocabulary (``Words``, ``run_scenario``)
    ``scripts``       seeded random multi-task scripts
    ``fork``          a real fork beside an emulated one

Outside the suite: ``python -m tests.differential.harness.search N [--seed S]`` (a fresh
random search), ``--replay KIND:INDEX``, ``--scripts`` (see ``search``).  ``availability``
says whether the tests can run here.
"""
