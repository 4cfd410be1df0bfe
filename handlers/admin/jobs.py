"""The job queue as staff see it: `GET /api/admin/jobs` (README "Background jobs")."""
from __future__ import annotations

from handlers.base import ApiHandler, responds, staff
from handlers.schemas_content import JobsOut


class JobsHandler(ApiHandler):
    @staff("settings.manage")
    @responds(JobsOut)
    async def get(self) -> None:
        """The job queue of the deployment with its latest failed jobs.

        ``{queue: {queued, active, scheduled},
        dead_letters: [{function, key, kwargs, attempts, error, failed_at (unix s)}]}``, the
        newest 100 jobs that failed their last try first (with Redis, shared by every
        instance; in process, this instance's). Also in /metrics (`hwc3d_jobs_*`)."""
        jobs = self.services.jobs
        self.write_json({"queue": await jobs.refresh_metrics(),
                         "dead_letters": await jobs.dead_letters(100)})


routes = [
    (r"/api/admin/jobs", JobsHandler),
]
