"""The training subprocess: ``python -m tunix_rt_pipelines.training.worker``, launched through Dagster Pipes.

Pipes gives the run two things a plain ``Popen`` would not: terminating the Dagster run
interrupts this process (no orphan keeps training), and the lines below reach Dagster's
event log. stdout/stderr go to the step's compute log, shown in the UI's log viewer.
"""

from __future__ import annotations

import sys

from dagster_pipes import open_dagster_pipes

from tunix_rt_pipelines.training.job import TrainingJob, run_training


def main() -> None:
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
