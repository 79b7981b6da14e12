"""Generated request ids and seeds: distinct, well-formed, and drawn afresh in a forked worker."""

import os
import re

from app.middleware import REQUEST_IDS
from app.sampling import fresh_seed


def in_forked_child(draw) -> str:
    """What `draw()` returns in a forked child process (the parent draws nothing)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once
        os.write(write, str(draw()).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        return pipe.read()


def test_request_ids_are_32_hex_digits_and_distinct():
    ids = [REQUEST_IDS.next() for _ in range(1000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_worker_draws_its_own_request_ids_and_seeds():
    child_id, child_seed = in_forked_child(REQUEST_IDS.next), in_forked_child(fresh_seed)
    assert child_id[:16] != REQUEST_IDS.next()[:16]  # another process prefix
    assert int(child_seed) != fresh_seed()  # without the reset: the parent's next seed


def test_seeds_fit_63_bits_and_differ():
    seeds = [fresh_seed() for _ in range(1000)]
    assert all(0 <= s < 2**63 for s in seeds) and len(set(seeds)) == len(seeds)
