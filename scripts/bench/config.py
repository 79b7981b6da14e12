"""What one benchmark run measures: systems, workloads, concurrencies and durations."""

from dataclasses import dataclass, field, replace

from scripts.bench.v2 import DECODER, ENCODER, MULTIPART


@dataclass(frozen=True)
class Workload:
    """One kind of request, sent over and over by the load generator."""

    name: str
    method: str
    path: str  # as vae-serve serves it; servers.Running.request maps it for the peers
    body: str | None = None  # key of an input file (see inputs.py)
    content_type: str | None = None
    response_type: str | None = None  # default: JSON for /encode, PNG otherwise
    vae_serve_only: bool = False  # only the default vae-serve system runs it (not in-process)


OCTETS = "application/octet-stream"
WORKLOADS = (
    Workload("sample16", "GET", "/sample?n=16"),
    Workload("sample1", "GET", "/sample?n=1"),
    Workload("encode28", "POST", "/encode", "digit_png", "image/png"),
    Workload("encode_photo", "POST", "/encode", "photo_jpg", "image/jpeg"),
    Workload("reconstruct", "POST", "/reconstruct", "digit_png", "image/png"),
    # The Open Inference Protocol (scripts/bench/v2.py) and the REST batches it is held to
    *(
        Workload(name, "POST", path, body, kind, answer, vae_serve_only=True)
        for name, path, body, kind, answer in (
            ("encode64", "/encode", "digits64_multipart", MULTIPART, "application/json"),
            ("decode16", "/decode", "z16_json", "application/json", "image/png"),
            ("v2_encode1_json", ENCODER, "v2_digit_json", "application/json", "application/json"),
            ("v2_encode1_bin", ENCODER, "v2_digit_bin", OCTETS, OCTETS),
            ("v2_encode64_bin", ENCODER, "v2_digits64_bin", OCTETS, OCTETS),
            ("v2_decode16_bin", DECODER, "v2_z16_bin", OCTETS, OCTETS),
        )
    ),
)
WORKLOAD_NAMES = tuple(w.name for w in WORKLOADS)


@dataclass(frozen=True)
class System:
    """One server configuration, started alone, measured, and stopped."""

    name: str
    kind: str  # "vae-serve" | "granian" | "naive" | "torchserve" | "litserve" | "bentoml" | "ray"
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 1
    all_cores: bool = False  # not pinned to the server core (several worker processes)


SYSTEMS = (
    System("vae-serve", "vae-serve"),  # as users run it: every setting at its default
    System("vae-serve-granian", "granian"),  # the same app under Granian instead of uvicorn
    System("vae-serve-nobatch", "vae-serve", {"VAE_BATCHING": "false"}),
    System("vae-serve-2w", "vae-serve", {"VAE_WORKERS": "2"}, workers=2, all_cores=True),
    System("naive-fastapi", "naive"),
    System("torchserve", "torchserve"),
    System("litserve", "litserve"),  # the peers: scripts/bench/peers, own venvs
    System("bentoml", "bentoml"),
    System("ray-serve", "ray"),
)
PEERS = ("litserve", "bentoml", "ray-serve")
SYSTEM_NAMES = ("inprocess", *(s.name for s in SYSTEMS))


@dataclass(frozen=True)
class Plan:
    systems: tuple[str, ...] = SYSTEM_NAMES
    workloads: tuple[str, ...] = WORKLOAD_NAMES
    concurrency: tuple[int, ...] = (1, 8, 32, 128)
    # (system, concurrencies) measured on top of `concurrency` for that system only
    extra_concurrency: tuple[tuple[str, tuple[int, ...]], ...] = ()
    duration_s: int = 2  # one measured repeat of one point (wrk takes whole seconds)
    repeats: int = 3  # the median of the repeats is reported
    warmup_s: int = 1  # unmeasured load before each point (0: none)
    inprocess_duration_s: float = 1.0
    cold_starts: int = 3  # process start -> ready, median of this many
    timeout_s: int = 10  # a request slower than this (s) counts as an error

    def concurrency_of(self, system: str) -> tuple[int, ...]:
        extra = [c for name, cs in self.extra_concurrency if name == system for c in cs]
        return tuple(sorted({*self.concurrency, *extra}))


QUICK = Plan(  # a smoke run: long enough that a busy machine still completes requests
    systems=("inprocess", "vae-serve"),
    concurrency=(1, 4),
    duration_s=2,
    repeats=1,
    warmup_s=1,
    inprocess_duration_s=0.5,
    cold_starts=1,
)


# ~14 min on 2 cores: the workloads every system runs, at c=8 and 32, and at c=1 where
# issue 17 sets a c=1 target
REDUCED = Plan(
    workloads=tuple(w.name for w in WORKLOADS if not w.vae_serve_only),
    concurrency=(8, 32),
    extra_concurrency=(("vae-serve", (1,)), ("torchserve", (1,)), ("inprocess", (1,))),
    cold_starts=1,
)


def make_plan(quick: bool, reduced: bool = False, **overrides: object) -> Plan:
    """The full (quick, reduced) plan with any non-None overrides applied."""
    base = QUICK if quick else REDUCED if reduced else Plan()
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})
