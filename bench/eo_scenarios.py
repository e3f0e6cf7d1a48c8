"""The scenarios of ``bench/exactly_once.py`` and their audit, for one backend and revision.

:class:`Runner` runs the ``concurrent``, ``sigkill``, ``outage`` and ``invalid`` trials on a
:class:`~eo_bed.Bed` through a :class:`~eo_processes.Launcher`; each ends as a :class:`Trial`,
the figures of its audit (platform, stand-in and ledger).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from eo_bed import START_DATE, Bed, closed_port, ledger_figures
from eo_processes import Child, Launcher, Outcome


@dataclass
class Trial:
    """One trial's figures, after its audit."""

    scenario: str
    kind: str
    world: str
    day: str | None
    launches: int = 0
    runs: int = 0
    runs_failed: int = 0
    runs_killed: int = 0
    needed: int = 0
    billed: int = 0
    paid_twice: int = 0
    extra_characters: int = 0
    extra_posts: int = 0
    duplicate_slots: int = 0
    complete: bool = False
    takeovers_logged: int = 0
    conflicts: int = 0
    get_responses: int = 0
    latency_s: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


class Runner:
    """The scenarios for one backend and one revision of the pipeline."""

    def __init__(self, bed: Bed, launcher: Launcher, backend: str, tag: str) -> None:
        self.bed, self.launcher, self.backend, self.tag = bed, launcher, backend, tag
        self.plan = bed.plan
        self.rng = random.Random(f"{bed.plan.seed}-{backend}")
        self.url = ""
        self.day_world = ""
        self.next_day = 0
        self.expected: dict[str, float] = {}
        self.module = ""

    def world(self, name: str) -> str:
        return self.bed.add_world(f"{self.tag}-{name}-{uuid.uuid4().hex[:5]}")

    def day(self) -> str:
        self.next_day += 1
        return (START_DATE + timedelta(days=self.next_day)).isoformat()

    def partition(self, kind: str, world_id: str, day: str | None) -> tuple[str, str]:
        if kind == "setup":
            return "populate_world", world_id
        return "daily_posts", f"{day}|{world_id}"

    def start(
        self, kind: str, world_id: str, day: str | None, count: int = 1, **env: str
    ) -> list[Child]:
        job, partition = self.partition(kind, world_id, day)
        children = self.launcher.take(count)
        run_env = {"GENERIA_LEDGER_URL": self.url, "RUNWARE_URL": self.bed.runware_url, **env}
        for child in children:
            child.go(job, partition, run_env, self.bed.run_config())
        return children

    def run(self, kind: str, world_id: str, day: str | None, **env: str) -> Outcome:
        (child,) = self.start(kind, world_id, day, **env)
        outcome = child.wait(self.plan.run_timeout_s)
        self.module = outcome.module or self.module
        return outcome

    # -- audit -------------------------------------------------------------------------------

    def posts_now(self, world_id: str) -> list[dict[str, Any]]:
        return self.bed.platform(world_id, "posts")

    def audit(
        self,
        trial: Trial,
        before: dict[str, int],
        posts_before: int,
        outcomes: Sequence[Outcome],
        needed_images: int | None = None,
    ) -> Trial:
        plan, bed = self.plan, self.bed
        after = bed.images()
        trial.billed = after["billed"] - before["billed"]
        trial.conflicts = after["conflicts"] - before["conflicts"]
        trial.get_responses = after["get_responses"] - before["get_responses"]
        trial.runs = len(outcomes)
        trial.runs_failed = sum(1 for o in outcomes if not o.success and not o.killed)
        trial.runs_killed = sum(1 for o in outcomes if o.killed)
        trial.takeovers_logged = sum(o.takeovers_logged for o in outcomes)
        trial.errors = [e[:400] for o in outcomes for e in o.errors][:6]
        last_ok = bool(outcomes) and outcomes[-1].success
        if trial.kind == "setup":
            characters = bed.platform(trial.world, "characters")
            trial.needed = plan.characters if needed_images is None else needed_images
            trial.extra_characters = max(0, len(characters) - plan.characters)
            with_avatar = sum(1 for c in characters if c.get("avatar_media_id"))
            trial.complete = last_ok and len(characters) >= plan.characters
            trial.complete = trial.complete and with_avatar >= plan.characters
            period: str | None = ""
        else:
            posts = self.posts_now(trial.world)
            new = posts[posts_before:]
            trial.needed = plan.posts if needed_images is None else needed_images
            trial.extra_posts = max(0, len(new) - plan.posts)
            media = [p["media_id"] for p in new]
            trial.duplicate_slots = len(media) - len(set(media))
            trial.complete = last_ok and len(new) >= plan.posts
            period = trial.day
        figures = ledger_figures(self.url, trial.world, period)
        trial.detail.update(figures)
        trial.duplicate_slots += int(figures.get("duplicates", 0) or 0)
        if trial.complete:
            trial.paid_twice = max(0, trial.billed - trial.needed)
        return trial

    def fresh(self, scenario: str, kind: str) -> tuple[Trial, dict[str, int], int]:
        if kind == "setup":
            world_id, day = self.world(scenario[:4]), None
            posts_before = 0
        else:
            world_id, day = self.day_world, self.day()
            posts_before = len(self.posts_now(world_id))
        trial = Trial(scenario, kind, world_id, day)
        trial.latency_s = self.bed.set_latency()
        return trial, self.bed.images(), posts_before

    def finish(self, trial: Trial, outcomes: list[Outcome]) -> None:
        """Fresh runs until one succeeds (bounded): the "run again" after a failure."""
        for _ in range(self.plan.max_reruns):
            if outcomes and outcomes[-1].success:
                return
            outcomes.append(self.run(trial.kind, trial.world, trial.day))

    # -- scenarios ---------------------------------------------------------------------------

    def prepare_day_world(self) -> dict[str, Any]:
        """The world the day trials post in, set up by one clean run (timed for the kills)."""
        self.day_world = self.world("days")
        setup = self.run("setup", self.day_world, None)
        if not setup.success:
            raise RuntimeError(f"the day world's setup failed: {setup.errors[:2]}")
        self.expected["setup"] = setup.elapsed_s
        day = self.run("day", self.day_world, self.day())
        if not day.success:
            raise RuntimeError(f"a clean day run failed: {day.errors[:2]}")
        self.expected["day"] = day.elapsed_s
        return {"setup_s": round(setup.elapsed_s, 2), "day_s": round(day.elapsed_s, 2)}

    def concurrent(self) -> list[Trial]:
        trials = []
        for _ in range(self.plan.concurrent_rounds):
            for kind, count in self.plan.concurrent_shapes:
                trial, before, posts_before = self.fresh("concurrent", kind)
                trial.launches = count
                children = self.start(kind, trial.world, trial.day, count)
                outcomes = [child.wait(self.plan.run_timeout_s) for child in children]
                trial.detail["launched_ok"] = sum(o.success for o in outcomes)
                self.finish(trial, outcomes)
                trials.append(self.audit(trial, before, posts_before, outcomes))
        return trials

    def sigkill(self) -> list[Trial]:
        trials = []
        for number in range(self.plan.kill_trials):
            kind = "setup" if number % 2 == 0 else "day"
            trial, before, posts_before = self.fresh("sigkill", kind)
            trial.launches = 1
            mode = self.rng.choice(("uniform", "uniform", "billed", "delivered"))
            needed = self.plan.characters if kind == "setup" else self.plan.posts
            (child,) = self.launcher.take(1)
            job, partition = self.partition(kind, trial.world, trial.day)
            kill_after = self.rng.uniform(0.0, self.expected.get(kind, 3.0))
            if mode != "uniform":
                self.bed.killer.arm(child, mode, self.rng.randint(1, needed))
            run_env = {"GENERIA_LEDGER_URL": self.url, "RUNWARE_URL": self.bed.runware_url}
            child.go(job, partition, run_env, self.bed.run_config())
            if mode == "uniform":
                deadline = child.started + kill_after
                while child.alive() and time.monotonic() < deadline:
                    time.sleep(0.005)
                fired = time.monotonic() - child.started if child.kill() else None
            else:
                deadline = child.started + self.plan.run_timeout_s
                while child.alive() and time.monotonic() < deadline:
                    time.sleep(0.01)
                fired = self.bed.killer.disarm()
            outcome = child.wait(self.plan.run_timeout_s)
            outcome.kill_mode, outcome.killed_at_s = mode, fired
            outcomes = [outcome]
            self.finish(trial, outcomes)
            trial.detail.update(
                {
                    "kill_mode": mode,
                    "killed_at_s": None if fired is None else round(fired, 3),
                    "expected_s": round(self.expected.get(kind, 0.0), 2),
                }
            )
            trials.append(self.audit(trial, before, posts_before, outcomes))
        return trials

    def outage(self) -> list[Trial]:
        trials = []
        for kind in self.plan.outage_kinds:
            trial, before, posts_before = self.fresh("outage", kind)
            trial.launches = 1
            down = f"ws://127.0.0.1:{closed_port()}/v1"
            during = self.run(kind, trial.world, trial.day, RUNWARE_URL=down)
            period = "" if kind == "setup" else trial.day
            figures = ledger_figures(self.url, trial.world, period)
            text = " ".join(during.errors)
            trial.detail.update(
                {
                    "outage_run_failed": not during.success,
                    "outage_run_s": round(during.elapsed_s, 2),
                    "outage_bounded": during.elapsed_s <= self.plan.outage_bound_s,
                    "outage_names_runware": "runware" in text.lower(),
                    "outage_spent_images": figures.get("spent_images"),
                    "outage_billed": self.bed.images()["billed"] - before["billed"],
                    "outage_error": text[:300],
                }
            )
            recovered = self.run(kind, trial.world, trial.day)
            outcomes = [during, recovered]
            trial.detail["recovery_completed"] = recovered.success
            trials.append(self.audit(trial, before, posts_before, outcomes))
        return trials

    def invalid(self) -> list[Trial]:
        trials = []
        for fault in self.plan.invalid_faults:
            trial, before, posts_before = self.fresh(f"invalid {fault}", "day")
            trial.launches = 1
            self.bed.standin.faults.set(**{fault: 1000})
            try:
                during = self.run("day", trial.world, trial.day)
            finally:
                self.bed.standin.faults.reset()
                self.bed.standin.faults.set(latency_s=trial.latency_s)
            paid_during = self.bed.images()["billed"] - before["billed"]
            text = " ".join(during.errors)
            trial.detail.update(
                {
                    "fault": fault,
                    "faulty_run_failed": not during.success,
                    "faulty_run_s": round(during.elapsed_s, 2),
                    "images_paid_during_fault": paid_during,
                    "images_needed": self.plan.posts,
                    "fault_error": text[:300],
                }
            )
            recovered = self.run("day", trial.world, trial.day)
            outcomes = [during, recovered]
            self.finish(trial, outcomes)
            # The unusable images were paid for and are not a second payment for one image.
            audited = self.audit(trial, before, posts_before, outcomes)
            audited.paid_twice = max(0, audited.billed - paid_during - audited.needed)
            trials.append(audited)
        return trials
