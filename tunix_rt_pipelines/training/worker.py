"""The training subprocess: ``python -m tunix_rt_pipelines.training.worker``, launched through Dagster Pipes.

Pipes gives the run two things a plain ``Popen`` would not: terminating the Dagster run
interrupts this process (no orphan keeps training), and the lines below reach Dagster's
event log. stdout/stderr go to the step's compute log, shown in the UI's log viewer.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from dagster_pipes import open_dagster_pipes

from tunix_rt_pipelines.training.job import TrainingJob, run_training


def die_with_parent() -> None:
    """Never outlive the Dagster step that started us.

    Termination reaches this process as SIGINT from Pipes, which then waits 20 s and gives up
    without escalating. SIGINT may also arrive ignored (inherited from a shell's background job),
    and native code (a long compile, a checkpoint write) does not return to Python to see it. So:
    SIGINT is restored to raise KeyboardInterrupt, and when the parent step process goes away the
    kernel kills us (Linux ``PR_SET_PDEATHSIG``), with a polling thread as the portable fallback.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parent = os.getppid()
    if sys.platform == "linux":
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def main() -> None:
    die_with_parent()
    with open_dagster_pipes() as pipes:
        job = TrainingJob(**pipes.extras["job"])

        def say(line: str) -> None:
            print(line, flush=True)  # the compute log (log viewer)
            pipes.log.info(line)  # the event log

        result = run_training(job, say=say)
        pipes.report_custom_message({"final_loss": result.final_loss, "steps": result.steps})
    sys.exit(0)


if __name__ == "__main__":
    main()
