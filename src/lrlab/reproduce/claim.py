"""What a reproduced claim is: `Claim`, the runs it trains (`TunnelRunSpec`, `TrainedRun`), the
context it trains them in (`ClaimContext`) and what it found (`ClaimResult`).

A claim is a published finding about learning-rate schedules that the wind tunnel can test at
small scale. Each lives in a module ``*_claim.py`` of this package (found by
`lrlab.reproduce.registry`) and states in code the quantity it measures and the rule that turns
it into a verdict; "inconclusive" is the verdict when the difference is inside the measured noise.
"""

from __future__ import annotations

import abc
import dataclasses
import itertools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from lrlab.atomic import atomic_write_text
from lrlab.errors import LrlabError
from lrlab.runs import Run, read_run

if TYPE_CHECKING:
    from lrlab.tunnel.pool import Backend

Verdict = Literal["holds", "does not hold", "inconclusive"]
VERDICTS: tuple[Verdict, ...] = ("holds", "does not hold", "inconclusive")
Key = TypeVar("Key")  # a role in a claim's plan of runs
# "test": seconds, for the test suite only; the CLI offers tiny, small and full.
SCALES = ("test", "tiny", "small", "full")
CLI_SCALES = SCALES[1:]
# A run name is a folder name: a safe slug.
_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
# Fields of train that name another run's checkpoint or folder: such a run trains after it.
_LINKS = ("branch_from", "init_from")


@dataclasses.dataclass(frozen=True)
class TunnelRunSpec:
    """One wind-tunnel run a claim needs: its `name` (unique within the claim, a safe slug: its
    folder is ``runs/<name>``) and its full tunnel config mapping (model/data/optim/train
    sections, as ``lrlab train --config`` takes)."""

    name: str
    tunnel: dict[str, Any]
    # Shared between claims: in ``DIR/runs/<name>`` (`ClaimContext.shared`), trained once for
    # every claim that names it (the name must then say all of the config).
    shared: bool = False

    def __post_init__(self) -> None:
        if not _SLUG.match(self.name):
            raise LrlabError(
                f"run name {self.name!r}: use lower-case letters, digits, '.', '_' and '-'"
            )


@dataclasses.dataclass(frozen=True)
class TrainedRun:
    """A run a claim trained (or reused): its folder, its eval curve (``eval.csv``) and its
    ``record.json`` (``status`` says whether it finished or diverged).

    `curve` is None for a run that diverged before its first evaluation: its ``eval.csv`` has
    no rows, and a `Run` needs at least one. Such a run is still a result (diverging is what an
    instability claim looks for), so it is returned, not refused; only asking for its curve
    (`eval`, `final_loss`) fails, with an error naming the run."""

    name: str
    folder: Path
    curve: Run | None
    record: dict[str, Any]

    @property
    def eval(self) -> Run:
        """The eval curve; an `LrlabError` naming the run where there is none."""
        if self.curve is None:
            raise LrlabError(
                f"{self.folder}: run {self.name!r} diverged before its first evaluation: "
                "it has no eval curve"
            )
        return self.curve

    @property
    def diverged(self) -> bool:
        """Whether the run stopped because its loss blew up."""
        return self.record.get("status") == "diverged"

    @property
    def final_loss(self) -> float:
        """The last evaluated loss."""
        return float(self.eval.loss[-1])

    @property
    def tokens_per_parameter(self) -> float | None:
        """Tokens trained per model parameter (from the record; None where it lacks them)."""
        tokens, parameters = self.record.get("tokens"), self.record.get("parameters")
        return tokens / parameters if tokens and parameters else None


@dataclasses.dataclass
class ClaimContext:
    """Where and how a claim trains: its `folder` (``DIR/<claim name>/``; runs go in
    ``folder/runs/<name>``), the `scale`, a `progress` callback for lines on stderr and the
    pool's `backend` (None: this machine). It counts the runs trained and reused."""

    folder: Path
    scale: str
    progress: Callable[[str], None]
    backend: Backend | None = None
    shared: Path | None = None  # the folder of runs shared between claims (``DIR/runs``)
    trained: list[str] = dataclasses.field(default_factory=list)
    reused: list[str] = dataclasses.field(default_factory=list)
    cpu_seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise LrlabError(f"scale {self.scale!r}: choose one of {', '.join(SCALES)}")

    def run_folder(self, name: str, shared: bool = False) -> Path:
        """The folder of the claim's run `name` (for another run's ``branch_from``), or of the
        shared run `name`."""
        if shared:
            return (self.shared or self.folder.parent / "runs") / name
        return self.folder / "runs" / name

    def folder_of(self, spec: TunnelRunSpec) -> Path:
        """The folder `spec` trains in."""
        return self.run_folder(spec.name, spec.shared)

    def figure_path(self, stem: str) -> Path:
        """Where the claim's figure `stem` goes: ``folder/<stem>.png``."""
        return self.folder / f"{stem}.png"

    def train(self, specs: Sequence[TunnelRunSpec]) -> dict[str, TrainedRun]:
        """Train (or reuse finished / resume interrupted) all `specs` at once in the pool; a run
        that diverges is NOT an error here (instability claims need them): its record says so
        and it is returned. A run whose ``train.branch_from``/``init_from`` points into another
        spec's folder trains after that one (in a later wave)."""
        # Imported here: listing or analysing claims needs no PyTorch.
        from lrlab.tunnel.pool import Job, train_jobs
        from lrlab.tunnel.threads import plan_workers

        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise LrlabError(f"{self.folder}: run names repeat: {', '.join(names)}")
        results: dict[str, TrainedRun] = {}
        for wave in _waves(specs, self.folder_of):
            jobs = []
            for spec in wave:
                folder = self.folder_of(spec)
                if _repoint(spec.tunnel, folder, self.folder.parent):
                    self.progress(f"{spec.name}: folder moved; its links re-pointed")
                if _ended(spec.tunnel, folder):  # read, not queued behind runs that train
                    self.reused.append(spec.name)
                    self.progress(f"{spec.name}: already ended, reused")
                    continue
                self.trained.append(spec.name)
                self.progress(f"{spec.name}: to train ({_steps(spec)} steps)")
                jobs.append(Job(spec.name, _plain(spec.tunnel), folder))
            # Longest first: the pool takes jobs in order, and a long run started last would
            # leave the other workers idle while it ends.
            jobs.sort(key=lambda job: -int(job.config.get("train", {}).get("steps") or 0))
            # The test scale's runs take a second: spawning a process for each would take longer.
            workers = 1 if self.scale == "test" else plan_workers(len(jobs))
            for outcome in train_jobs(jobs, workers, backend=self.backend, log=self.progress):
                record = outcome["record"]
                self.cpu_seconds += own_seconds(record)
                status = record.get("status")
                self.progress(f"{outcome['name']}: {status} after {record.get('steps_done')} steps")
            for spec in wave:
                results[spec.name] = _trained(spec.name, self.folder_of(spec))
        return results

    def train_roles(self, specs: Mapping[Key, TunnelRunSpec]) -> dict[Key, TrainedRun]:
        """`train` the runs of a claim's plan, `specs` by role, and return them by role."""
        trained = self.train(list(specs.values()))
        return {role: trained[spec.name] for role, spec in specs.items()}


def _steps(spec: TunnelRunSpec) -> Any:
    """The steps `spec` trains (as its config gives them)."""
    return (spec.tunnel.get("train") or {}).get("steps")


def own_seconds(record: Mapping[str, Any]) -> float:
    """The training seconds of a run's own steps: a branch's ``elapsed_s`` counts its parent's
    seconds up to the branch point too, so only its share of steps after it is taken (the
    parent's speed taken as the branch's)."""
    elapsed = float(record.get("elapsed_s") or 0.0)
    done, start = record.get("steps_done") or 0, record.get("branch_step") or 0
    return elapsed * (done - start) / done if done else 0.0


def _plain(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy as plain JSON data (a claim's config is never shared with the pool)."""
    return json.loads(json.dumps(mapping))


def _waves(
    specs: Sequence[TunnelRunSpec], folder_of: Callable[[TunnelRunSpec], Path]
) -> list[list[TunnelRunSpec]]:
    """`specs` in waves: each run after the runs whose folders its links point into."""
    folders = {spec.name: folder_of(spec).absolute() for spec in specs}
    needs: dict[str, set[str]] = {}
    for spec in specs:
        train = spec.tunnel.get("train") or {}
        needs[spec.name] = set()
        for field in _LINKS:
            target = train.get(field)
            if not target:
                continue
            path = Path(str(target)).absolute()
            for name, run_folder in folders.items():
                if name != spec.name and path.is_relative_to(run_folder):
                    needs[spec.name].add(name)
    waves: list[list[TunnelRunSpec]] = []
    done: set[str] = set()
    left = list(specs)
    while left:
        wave = [spec for spec in left if needs[spec.name] <= done]
        if not wave:
            raise LrlabError(
                "runs branch from each other in a cycle: " + ", ".join(spec.name for spec in left)
            )
        waves.append(wave)
        done |= {spec.name for spec in wave}
        left = [spec for spec in left if spec.name not in done]
    return waves


def _repoint(tunnel: Mapping[str, Any], folder: Path, root: Path) -> bool:
    """Re-point the links stored in `folder`'s ``config.json`` to `tunnel`'s where the output
    folder `root` was moved or copied since the run trained: each link that differs must be, from
    the output folder it was written under, the same relative path as `tunnel`'s is from `root`
    (one old output folder for all of them). Return whether it rewrote the file (atomically).

    Why here and so: links are absolute (a rerun from another working directory must see the
    same config), so a moved folder changes them, and the tunnel rightly refuses to resume a run
    whose link changed (for ``lrlab train`` that is another run). Within a claim's output folder
    the relative layout is the identity of a link, so rewriting the stored links makes the run
    folder true to where it now lies, and everything after (reuse, resume from its own
    checkpoints) is the tunnel's usual path; comparing relative paths in `_ended` instead would
    leave an interrupted run to resume with its old config, pointing at the old folder."""
    saved = folder / "config.json"
    try:
        stored = json.loads(saved.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, or unreadable: training says so
        return False
    theirs = stored.get("train") if isinstance(stored, dict) else None
    if not isinstance(theirs, dict):
        return False
    ours = tunnel.get("train") or {}
    changed = [field for field in _LINKS if ours.get(field) != theirs.get(field)]
    old_roots = {_old_root(ours.get(field), theirs.get(field), root) for field in changed}
    # None: a link really changed, which training refuses, naming the field.
    if not changed or None in old_roots or len(old_roots) != 1:
        return False
    for field in changed:
        theirs[field] = ours[field]
    if "out" in stored:
        stored["out"] = str(folder)
    atomic_write_text(saved, json.dumps(stored, indent=2) + "\n")
    return True


def _old_root(ours: Any, theirs: Any, root: Path) -> Path | None:
    """The output folder under which the path `theirs` is what `ours` is under `root` (the
    same relative path), or None where there is none."""
    if not ours or not theirs or not Path(str(theirs)).is_absolute():
        return None
    path, old = Path(str(ours)).absolute(), Path(str(theirs))
    # Links are written resolved or not (claim 3 resolves them): either spelling of root.
    for base in (root.absolute(), root.resolve()):
        if path.is_relative_to(base):
            tail = path.relative_to(base).parts
            if len(old.parts) > len(tail) and old.parts[-len(tail) :] == tail:
                return Path(*old.parts[: -len(tail)])
    return None


def _ended(tunnel: Mapping[str, Any], folder: Path) -> bool:
    """Whether the run in `folder` already ended with this config (training it reuses it)."""
    from lrlab.tunnel.config import config_from_dict
    from lrlab.tunnel.train import plan_resume

    try:
        return plan_resume(config_from_dict(_plain(tunnel), str(folder)), folder).ended is not None
    except LrlabError:  # a changed config: training says so, naming the fields
        return False


def _trained(name: str, folder: Path) -> TrainedRun:
    """The `TrainedRun` of the ended run in `folder`."""
    path = folder / "record.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise LrlabError(f"{path}: cannot read the run's record ({error})") from None
    if record.get("status") == "diverged" and not _has_rows(folder / "eval.csv"):
        return TrainedRun(name, folder, None, record)  # NaN before its first evaluation
    curve = read_run(folder / "eval.csv")
    return TrainedRun(name, folder, dataclasses.replace(curve, name=name), record)


def _has_rows(path: Path) -> bool:
    """Whether the CSV at `path` has a row below its header (a missing file has none)."""
    try:
        with path.open(encoding="utf-8") as handle:
            return any(line.strip() for line in itertools.islice(handle, 1, None))
    except OSError:
        return False


@dataclasses.dataclass(frozen=True)
class ClaimResult:
    """What a claim found: its `verdict`, a one- or two-sentence `summary` with the measured
    numbers, the measured quantities (`numbers`, JSON-able), its `figures` (PNG file names
    relative to the claim's folder) and how it compares with the paper (`comparison`)."""

    verdict: Verdict
    summary: str
    numbers: dict[str, Any]
    figures: list[str]
    comparison: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise LrlabError(f"verdict {self.verdict!r}: choose one of {', '.join(VERDICTS)}")


class Claim(abc.ABC):
    """A published claim the wind tunnel can test: its CLI `name`, `number` (the order of issue
    17: 1..5), `title`, `paper` (citations with arXiv ids), the `statement` as the paper states
    it, and what each of its `scales` trains (and what ``full`` needs on a GPU)."""

    name: ClassVar[str]
    number: ClassVar[int]
    title: ClassVar[str]
    paper: ClassVar[str]
    statement: ClassVar[str]
    scales: ClassVar[str]

    @abc.abstractmethod
    def run(self, context: ClaimContext) -> ClaimResult:
        """Train the claim's runs in `context` and measure the claim on them."""
