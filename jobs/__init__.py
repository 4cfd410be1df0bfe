"""Background jobs: the functions the job queue (`providers.jobs`) runs, and their schedule.

`registry(settings)` lists them with their retry policies:

| job | when | what |
|---|---|---|
| `deliver_email` | each email (`documents.outbox`) | one email, retried with backoff |
| `deliver_batch` | bulk sends | up to 100 emails over one SMTP connection |
| `analyse_model` | a model whose upload analysis was cut short | re-analyses the stored file |
| `build_preview` | each uploaded or replacing model file | web preview GLB and rendered thumbnails |
| `renew_subscriptions` | `CRON_RENEWALS` (every 5 min) | charges subscriptions at period end, dunning |
| `release_earnings` | `CRON_EARNINGS` (every 15 min) | matured sales become available; "funds available" |
| `reclaim_stranded` | `CRON_RECLAIM` (every 5 min) | what a crash stranded: coupon uses, payouts, lost jobs |
| `delete_unattached` | `CRON_UPLOADS` (hourly) | uploads unused for `UNATTACHED_UPLOAD_HOURS` |
"""
from __future__ import annotations

from jobs import work
from providers.jobs import Periodic, Policy, Registry


def registry(settings) -> Registry:
    """The job functions and periodic jobs of this server, with policies from `settings`."""
    reg = Registry()
    email = Policy(retries=settings.email_retries, retry_delay=settings.email_retry_seconds,
                   max_delay=3600.0, timeout=120)
    reg.job(email)(work.deliver_email)
    reg.job(Policy(retries=settings.email_retries, retry_delay=settings.email_retry_seconds,
                   max_delay=3600.0, timeout=900))(work.deliver_batch)
    reg.job(Policy(retries=3, retry_delay=30.0, timeout=int(
        settings.analysis_timeout_seconds * 2 + 60)))(work.analyse_model)
    # a try is two builds at most (a crashed worker is replaced once), after the builds of the
    # instance's other jobs (one at a time), plus download and store; a killed instance's try
    # is found by its heartbeat, not by this limit
    build_limit = settings.preview_timeout_seconds * 2 * settings.jobs_concurrency
    reg.job(Policy(retries=settings.preview_retries, retry_delay=settings.preview_retry_seconds,
                   max_delay=3600.0, timeout=int(build_limit + 300)))(work.build_preview)
    reg.periodic = [
        Periodic(work.renew_subscriptions, settings.cron_renewals),
        Periodic(work.release_earnings, settings.cron_earnings),
        Periodic(work.reclaim_stranded, settings.cron_reclaim),
        Periodic(work.delete_unattached, settings.cron_uploads),
    ]
    return reg
