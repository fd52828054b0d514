"""The kinds of due work, and what each runs (``Sandbox.run_due`` takes the jobs that fell due).

A job names its kind and its subject only: what it does is decided when it runs, from the state
then (a request validated or reset meanwhile is left as it is)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from baas_sandbox.domain.due_work import DueJob
from baas_sandbox.services import claims, pix_keys
from baas_sandbox.services.sandbox import Sandbox

#: kind -> what runs, given the namespace and the job's subject
JOBS: dict[str, Callable[[Sandbox, str], Awaitable[None]]] = {
    pix_keys.DECIDE: pix_keys.decide,
    pix_keys.END_VALIDATION_WINDOW: pix_keys.expire_validation,
    claims.RESOLUTION_DEADLINE: claims.resolution_deadline,
    claims.CONCLUSION_DEADLINE: claims.conclusion_deadline,
    claims.END_CLAIM_VALIDATION: claims.expire_validation,
}


async def run_job(sandbox: Sandbox, job: DueJob) -> None:
    run = JOBS.get(job.kind)
    if run is None:  # a job from a newer version's state file: nothing here knows how to run it
        raise LookupError(f"unknown job kind {job.kind!r}")
    await run(sandbox, job.subject)
