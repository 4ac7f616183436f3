"""The Python API's progress bar of a search (`run_search(..., progress=True)`)."""
from ...util.progress import notebook_bar, tqdm_class


class ProgressReport:
    """A search Report that advances a tqdm.auto bar by each finished trial (the trials
    finished by an earlier run of a resumed search count at their stage's start), shows the
    best validation accuracy so far, and passes every call on to `report`."""

    def __init__(self, report, plan):
        tqdm_class()  # a missing tqdm is said before anything runs
        self.report, self.total = report, sum(n for n, _ in plan.stages)
        self.bar, self.best = None, None

    def stage(self, stage, space, budget, n_trials, n_to_run):
        if self.bar is None:
            self.bar = notebook_bar(self.total, "search", "trial")
        self._advance(n_trials - n_to_run)
        self.report.stage(stage, space, budget, n_trials, n_to_run)

    def trial(self, record):
        if record["status"] == "ok" and record["val_acc"] is not None:
            self.best = max(self.best or 0.0, record["val_acc"])
            self.bar.set_postfix(best_val_acc=f"{self.best:.4f}", refresh=False)
        self._advance(1)
        self.report.trial(record)

    def _advance(self, n):
        self.bar.update(n)
        if self.bar.n >= self.total:
            self.bar.close()

    def __getattr__(self, name):  # stage_done, retraining, retrained
        return getattr(self.report, name)
